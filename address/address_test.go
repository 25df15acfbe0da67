package address

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Address
	}{
		{"netns/ns1/tcp/:8000", Address{"ns1", "tcp", "", 8000, 8000}},
		{"netns/ns1/UDP/0.0.0.0:53", Address{"ns1", "udp", "0.0.0.0", 53, 53}},
		{"netns/ns1/tcp4/10.0.0.1:8000-8010", Address{"ns1", "tcp4", "10.0.0.1", 8000, 8010}},
		{"netns//var/run/netns/ns1/tcp/:80", Address{"/var/run/netns/ns1", "tcp", "", 80, 80}},
		{"netns//proc/1234/ns/net/udp6/:0", Address{"/proc/1234/ns/net", "udp6", "", 0, 0}},
		{"netns/[ns1/tcp/::1]:80", Address{"ns1", "tcp", "::1", 80, 80}},
		{"netns/[ns1/tcp6/fe80::1%2]:80", Address{"ns1", "tcp6", "fe80::1%2", 80, 80}},
		{"netns/[/run/docker/netns/abc/tcp/::]:443", Address{"/run/docker/netns/abc", "tcp", "::", 443, 443}},
		{"netns/tenant-a.b_c/tcp/localhost:8000", Address{"tenant-a.b_c", "tcp", "localhost", 8000, 8000}},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String gives back something that parses to the same address.
		again, err := Parse(got.String())
		if err != nil || again != got {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

// String prints every address ParseAddress accepts in a form that parses
// back to the same address, also when the namespace name or path holds a
// colon (then the whole inner part is bracketed, as for an IPv6 host).
func TestAddressStringRoundTrips(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"netns/[a:b/tcp/127.0.0.1]:80", "netns/[a:b/tcp/127.0.0.1]:80"},
		{"netns/[/srv/x:y/udp/10.0.0.1]:53", "netns/[/srv/x:y/udp/10.0.0.1]:53"},
		{"netns/[a:b/tcp/]:80-81", "netns/[a:b/tcp/]:80-81"},
		{"netns/[tenant:*/TCP/]:80", "netns/[tenant:*/tcp/]:80"},
		{"netns/[a:b/tcp6/fe80::1%eth0]:443", "netns/[a:b/tcp6/fe80::1%eth0]:443"},
		{"netns/[ns1/tcp/127.0.0.1]:80", "netns/ns1/tcp/127.0.0.1:80"},
		{"netns/a%b c/udp/:053", "netns/a%b c/udp/:53"},
		{"netns//srv/a b%c/tcp/:80", "netns//srv/a b%c/tcp/:80"},
	} {
		a, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := a.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if again, err := Parse(a.String()); err != nil || again != a {
			t.Errorf("Parse(%q) = %+v, printed as %q, which parses to %+v, %v", tc.in, a, a.String(), again, err)
		}
	}
}

func TestParseAddressErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tcp/:80", "want netns/<namespace>"},
		{"netns/tcp/:80", "missing namespace or network"},
		{"netns/:80", "missing namespace and network"},
		{"netns//tcp/:80", "empty namespace"},
		{"netns/ns1//:80", "missing network"},
		{"netns/ns1/quic/:80", `unknown network "quic"`},
		{"netns/ns1/unix/:80", `unknown network "unix"`},
		{"netns/ns1/sctp/:80", "needs the sctp app"},
		{"netns/a/b/tcp/:80", `namespace "a/b"`},
		{"netns/../tcp/:80", `namespace ".."`},
		{"netns/ns1/tcp/:70000", `port "70000" out of range`},
		{"netns/ns1/tcp/:x", `port "x" out of range`},
		{"netns/ns1/tcp/:90-80", "end before start"},
		{"netns/ns1/tcp/", "missing port"},
		{"netns/ns1/tcp/::1:80", "too many colons"},
		{"netns/[ns1/tcp/zz::1]:80", "not a valid IPv6"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error = %v; want %q", tc.in, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), "netns") {
			t.Errorf("Parse(%q) error %q does not name the address", tc.in, err)
		}
	}
}
