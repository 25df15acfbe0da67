package nshttp

import (
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func TestParseDial(t *testing.T) {
	for _, c := range []struct {
		in                  string
		ns, network, hostpt string
		err                 string
	}{
		{in: "netns/ns1/tcp/10.0.0.1:80", ns: "ns1", network: "tcp", hostpt: "10.0.0.1:80"},
		{in: "netns//run/netns/x/tcp4/10.0.0.1:80", ns: "/run/netns/x", network: "tcp4", hostpt: "10.0.0.1:80"},
		{in: "netns/[ns1/tcp6/fd00::1]:443", ns: "ns1", network: "tcp6", hostpt: "[fd00::1]:443"},
		{in: "ns1/tcp/10.0.0.1:8081", ns: "ns1", network: "tcp", hostpt: "10.0.0.1:8081"}, // health_port rewrite
		{in: "127.0.0.1:80", network: "tcp", hostpt: "127.0.0.1:80"},
		{in: "localhost:80", network: "tcp", hostpt: "localhost:80"},
		{in: "unix//run/app.sock", network: "unix", hostpt: "/run/app.sock"},
		{in: "netns/ns1/udp/10.0.0.1:80", err: "cannot carry HTTP"},
		{in: "netns/ns1/tcp/backend:80", err: "must be an IP address"},
		{in: "netns/ns1/tcp/10.0.0.1:80-81", err: "port ranges"},
		{in: "netns//tcp/10.0.0.1:80", err: "empty namespace"},
		{in: "netns/../tcp/10.0.0.1:80", err: "not a valid name"},
		{in: "udp/10.0.0.1:80", err: "cannot be dialed"},
	} {
		tg, err := parseDial(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if tg.ns != c.ns || tg.network != c.network || tg.hostport() != c.hostpt {
			t.Errorf("%s: got ns %q network %q hostport %q; want %q %q %q", c.in, tg.ns, tg.network, tg.hostport(), c.ns, c.network, c.hostpt)
		}
	}
}

// The pool key tells namespaces apart by identity, not by name, and
// survives Go's URL host parsing unchanged.
func TestKeyCarriesIdentity(t *testing.T) {
	a := &target{ns: "ns1", id: nsenter.ID{Dev: 4, Ino: 100}, network: "tcp", host: "10.0.0.1", port: "80"}
	b := *a
	b.id.Ino = 101 // ns1 deleted and re-created
	c := *a
	c.ns = "/var/run/netns/ns1" // the same namespace by another name
	own := &target{network: "tcp", host: "10.0.0.1", port: "80"}
	if a.key("") == b.key("") || a.key("") == own.key("") || a.key("") != c.key("") {
		t.Errorf("keys: %q %q %q %q", a.key(""), b.key(""), c.key(""), own.key(""))
	}
	if a.key("192.0.2.1:5000") == a.key("192.0.2.2:5000") {
		t.Error("PROXY protocol clients share a key")
	}
	v6 := &target{ns: "ns1", id: a.id, network: "tcp6", host: "fd00::1", port: "443"}
	if k := v6.key(""); strings.Count(k, ":") != 1 || !strings.HasSuffix(k, ":443") {
		t.Errorf("IPv6 key %q must have exactly one colon, before the port", k)
	}
}
