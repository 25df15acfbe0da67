package nsproxy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/allow"
)

// An upstream address that only placeholders make (netns/{...}/tcp/...)
// is checked against the allow list at each dial: a namespace outside it
// is not opened and the dial fails naming it.
func TestDialChecksAllowList(t *testing.T) {
	l, err := allow.Compile("this config's netns allow list", []string{"tenant-*"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := allow.New(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"other", "/srv/ns/tenant-a", "/var/run/netns/../netns/other"} {
		tgt := &target{ns: ns, network: "tcp", hostport: "127.0.0.1:9"}
		_, err := dial(context.Background(), pol, tgt)
		if !errors.Is(err, allow.ErrNotAllowed) || !strings.Contains(err.Error(), "allow list [tenant-*]") {
			t.Errorf("dial in %s: %v, want refused by the allow list", ns, err)
		}
	}
}
