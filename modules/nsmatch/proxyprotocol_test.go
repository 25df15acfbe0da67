package nsmatch

import (
	"net"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pires/go-proxyproto"
)

func TestMatchesNetns(t *testing.T) {
	for _, c := range []struct {
		got     string
		entries []string
		want    bool
	}{
		{"ns1", []string{"ns1"}, true},
		{"ns1", []string{"/var/run/netns/ns1"}, true},
		{"/var/run/netns/ns1", []string{"ns1"}, true},
		{"tenant-a", []string{"tenant-*"}, true},
		{"ns2", []string{"ns1", "tenant-*"}, false},
		{"", []string{"*"}, false},
		{"../etc", []string{"*"}, false},
		// Only * and ? are wildcards, as for the netns matcher and set
		// addresses: [ and \ are not pattern syntax.
		{"tenant-a", []string{"[t]enant-a"}, false},
		{"tenant-a", []string{`\tenant-a`}, false},
		{"[t]enant-a", []string{"[t]enant-a"}, true},
	} {
		if got := MatchesNetns(c.got, c.entries); got != c.want {
			t.Errorf("MatchesNetns(%q, %q) = %v", c.got, c.entries, got)
		}
	}
}

func TestProxyNetnsFromHeader(t *testing.T) {
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}, &net.TCPAddr{IP: net.IPv4zero})
	if _, ok := ProxyNetns(h); ok {
		t.Error("a header without TLVs names a namespace")
	}
	if err := h.SetTLVs([]proxyproto.TLV{{Type: TLVTypeNetns, Value: []byte("blue")}}); err != nil {
		t.Fatal(err)
	}
	if ns, ok := ProxyNetns(h); !ok || ns != "blue" {
		t.Errorf("got %q, %v", ns, ok)
	}
	var m MatchProxyNetns
	if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser("proxy_protocol_netns blue tenant-*")); err != nil || len(m) != 2 || m.Validate() != nil {
		t.Errorf("Caddyfile: %v %v", m, err)
	}
	if err := new(MatchProxyNetns).UnmarshalCaddyfile(caddyfile.NewTestDispenser("proxy_protocol_netns")); err == nil {
		t.Error("no namespaces: no error")
	}
}
