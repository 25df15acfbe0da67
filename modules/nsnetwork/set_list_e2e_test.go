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

// A list of namespaces (netns/a,b/tcp/...) is one listener over the
// namespaces named, in the Caddyfile as in JSON: each answers as itself,
// a namespace not named does not, and a listed namespace deleted and
// created again is listened in again.
func TestSetList(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	a, b, c := prefix+"a", prefix+"b", prefix+"c"
	addNamed(t, a, b, c)
	for _, ns := range []string{a, b, c} {
		startNSBackend(t, ns, "127.0.0.1:9000", ns)
	}
	list := a + "," + b
	caddyfile := fmt.Sprintf(`{
	admin %s
	layer4 {
		netns/%[2]s/tcp/127.0.0.1:8000 netns/%[2]s/udp/127.0.0.1:8000 {
			route {
				netns_proxy netns/{l4.netns.name}/{l4.netns.network}/127.0.0.1:9000
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), list)
	for _, form := range []struct{ name, config, ct string }{
		{"caddyfile", caddyfile, "caddyfile"},
		{"json", setConfig(admin, "list", list, "127.0.0.1:8000"), "json"},
	} {
		t.Run(form.name, func(t *testing.T) {
			admin.MustLoad(t, form.config, form.ct)
			for _, network := range []string{"tcp", "udp"} {
				for _, ns := range []string{a, b} {
					eventually(t, 5*time.Second, ns+" answers over "+network, func() bool { return answers(ns, network, "127.0.0.1:8000") })
				}
				if _, err := ask(c, "tcp", "127.0.0.1:8000", "ping"); err == nil {
					t.Fatalf("%s, not in the list, answers", c)
				}
			}
			socks, _ := nsnetwork.Listeners()
			members := 0
			for _, s := range socks {
				for _, set := range s.Sets {
					if strings.Contains(set, list) {
						members++
					}
				}
			}
			if members != 4 {
				t.Errorf("%d member sockets of the list in the admin listing, want 4 (tcp and udp in %s and %s)", members, a, b)
			}
		})
	}
	nstest.Del(b)
	eventually(t, 10*time.Second, b+"'s sockets closed", func() bool {
		for _, s := range nsnetwork.Sockets() {
			if s.Namespace == b {
				return false
			}
		}
		return true
	})
	addNamed(t, b)
	startNSBackend(t, b, "127.0.0.1:9000", b)
	eventually(t, 10*time.Second, b+" answers again once created again", func() bool { return answers(b, "tcp", "127.0.0.1:8000") })
}
