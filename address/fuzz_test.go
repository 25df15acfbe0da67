package address

import (
	"strings"
	"testing"
)

// FuzzParseAddress: parsing never panics, every error names the address,
// and what parses prints back to an address that parses the same.
// Run longer with: go test -fuzz=FuzzParseAddress -fuzztime=60s ./address/
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"netns/ns1/tcp/:8000",
		"netns//var/run/netns/ns1/udp/10.0.0.1:53",
		"netns/[ns1/tcp6/::1]:8000",
		"netns/[ns1/tcp6/fe80::1%2]:80",
		"netns/ns1/tcp/127.0.0.1:8000-8010",
		"netns//proc/1/ns/net/tcp4/:0",
		"netns//tcp/:80",
		"netns/ns1/tcp/[::1]:80",
		"netns/a/b/c/d/e:1",
		"netns/ns1/sctp/:38412",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !strings.Contains(err.Error(), "netns") && !strings.Contains(err.Error(), "address") {
				t.Fatalf("error %q does not name the address", err)
			}
			return
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Fatalf("%q parsed to %+v, printed as %q, parsed again to %+v, %v", s, a, a.String(), b, err)
		}
	})
}
