package nsnetwork

import (
	"net"
	"net/netip"
	"testing"
)

// caddy-l4 keys UDP flows by RemoteAddr().String(), and matchers split it
// into host and port and parse the host as an IP: both must work.
func TestSetAddrString(t *testing.T) {
	for _, tc := range []struct {
		ap   string
		tag  string
		want string
	}{
		{"10.0.0.2:5353", "tenant-a", "10.0.0.2:5353%tenant-a"},
		{"[fd00::2]:5353", "tenant-a", "[fd00::2]:5353%tenant-a"},
		{"[fe80::1%2]:53", "b", "[fe80::1%2]:53%b"},
	} {
		a := &SetAddr{AddrPort: netip.MustParseAddrPort(tc.ap), m: &member{tag: tc.tag}}
		if got := a.String(); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			t.Errorf("%s: SplitHostPort: %v", a, err)
			continue
		}
		if ip, err := netip.ParseAddr(host); err != nil || ip != a.AddrPort.Addr() {
			t.Errorf("%s: host %q parses as %v, %v", a, host, ip, err)
		}
	}
	if got := memberTag("a:b", nsID(7)); got != "7" {
		t.Errorf("memberTag with a colon = %q, want the inode", got)
	}
}
