package nsset

import (
	"net"
	"net/netip"
	"testing"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// caddy-l4 keys UDP flows by RemoteAddr().String() (a *fanin.Addr:
// "<ip>:<port>%<label>"), and matchers split it into host and port and
// parse the host as an IP: both must work with every label.
func TestLabel(t *testing.T) {
	for _, tc := range []struct {
		ap   string
		name string
		want string
	}{
		{"10.0.0.2:5353", "tenant-a", "10.0.0.2:5353%tenant-a"},
		{"[fd00::2]:5353", "tenant-a", "[fd00::2]:5353%tenant-a"},
		{"[fe80::1%2]:53", "b", "[fe80::1%2]:53%b"},
		{"10.0.0.2:53", "a:b", "10.0.0.2:53%7"},
		{"10.0.0.2:53", "a%b", "10.0.0.2:53%7"},
	} {
		ap := netip.MustParseAddrPort(tc.ap)
		s := ap.String() + "%" + Label(tc.name, nsenter.ID{Ino: 7})
		if s != tc.want {
			t.Errorf("address = %q, want %q", s, tc.want)
		}
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			t.Errorf("%s: SplitHostPort: %v", s, err)
			continue
		}
		if ip, err := netip.ParseAddr(host); err != nil || ip != ap.Addr() {
			t.Errorf("%s: host %q parses as %v, %v", s, host, ip, err)
		}
	}
}
