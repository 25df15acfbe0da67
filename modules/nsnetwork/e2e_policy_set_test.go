package nsnetwork_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// A namespace set opens members only in the namespaces the config's allow
// list allows: the others matching the pattern get no socket.
func TestAllowListFiltersSetMembers(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	allowed, other := nss[0], nss[1]
	b := startBackend(t, "b")
	prefix := nss[0][:strings.LastIndexByte(nss[0], '-')+1]
	admin.MustLoad(t, policyConfig(admin, []string{allowed}, map[string]policyServer{
		"set": {[]string{"netns/" + prefix + "*/tcp/127.0.0.1:8000"}, proxyTo(fmt.Sprintf("127.0.0.1:%d", b.port))},
	}), "json")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := ask(allowed, "tcp", "127.0.0.1:8000", "x"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectAnswer(t, allowed, "tcp", "127.0.0.1:8000", "b")
	expectNoAnswer(t, other, "tcp", "127.0.0.1:8000")
	id := nstest.ID(t, other)
	for _, s := range nsnetwork.Sockets() {
		if s.NamespaceID == id {
			t.Errorf("socket %s %s open in %s, which the list does not allow", s.Network, s.Address, other)
		}
	}
}
