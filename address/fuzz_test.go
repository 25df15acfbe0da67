package address

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// fuzzSeeds are addresses worth mutating: the grammar's corners, and
// namespace names and paths holding the characters that separate its parts
// (: [ ] % space /), IPv6 hosts with zones, port ranges and sets.
var fuzzSeeds = []string{
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
	// Colons in the namespace: printed back bracketed. (The inputs that
	// found this are regression cases in testdata/fuzz.)
	"netns/[a:b/tcp/]:80-90",
	"netns/[:/udp6/fe80::1%eth0]:0-65535",
	"netns/[/srv/x:y/t?/udp/1.2.3.4]:53",
	// Brackets, percent signs and spaces in names.
	"netns/a[b/tcp/:80",
	"netns/a]b/tcp/:80",
	"netns/[a[b/tcp/::1]:80",
	"netns/[a]b/tcp/::1]:80",
	"netns/a%b/tcp/:80",
	"netns/a%25b/udp/1.2.3.4%eth0:53",
	"netns/a b/tcp/ :80",
	"netns/ a /TCP/:80",
	"netns// srv/ x y /tcp/:80",
	"netns//srv/a%b c/udp/:53-54",
	"netns//run/netns/../netns/ns1/tcp/:80",
	"netns/[/var/run/docker/netns/ab:cd/tcp6/fe80::1%veth0]:8443",
	// Sets.
	"netns/tenant-*/udp/:53",
	"netns//var/run/docker/netns/*/tcp/:80",
	"netns//srv/x:y/t?/tcp/:80",
	"netns/[/srv/x:y/t?/tcp/::]:80",
	"netns/*/sctp/:38412-38413",
}

// FuzzParseAddress: parsing never panics, every error names the address,
// and what parses prints back (String) to an address that parses the same,
// both with ParseAddress and the way Caddy hands it to the listener
// (caddy.ParseNetworkAddress, then the host and port range to parse).
// CI runs it for a while (.ci/run); longer:
// go test -run '^$' -fuzz '^FuzzParseAddress$' -fuzztime 60s ./address/
func FuzzParseAddress(f *testing.F) {
	for _, s := range fuzzSeeds {
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
		printed := a.String()
		b, err := Parse(printed)
		if err != nil || b != a {
			t.Fatalf("%q parsed to %+v, printed as %q, parsed again to %+v, %v", s, a, printed, b, err)
		}
		na, err := caddy.ParseNetworkAddress(printed)
		if err != nil {
			if a.EndPort-a.StartPort+1 > 65535 && strings.Contains(err.Error(), "port range exceeds") {
				return // Caddy's limit, not ours
			}
			t.Fatalf("%q parsed to %+v, printed as %q, which Caddy refuses: %v", s, a, printed, err)
		}
		ports := fmt.Sprintf("%d-%d", na.StartPort, na.EndPort)
		c, err := ParseHostPort(na.Host, ports)
		if na.Network != Network || err != nil || c != a {
			t.Fatalf("%q parsed to %+v, printed as %q, which Caddy hands over as network %q host %q ports %s: %+v, %v",
				s, a, printed, na.Network, na.Host, ports, c, err)
		}
	})
}

// FuzzSetPattern: splitting a set address's pattern never panics, errors
// name the pattern, and the directory and glob it gives name the same
// namespaces as the pattern.
// go test -run '^$' -fuzz '^FuzzSetPattern$' -fuzztime 60s ./modules/nsnetwork/
func FuzzSetPattern(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil || !a.IsSet() {
			return
		}
		dir, glob, err := a.SetPattern()
		if err != nil {
			if !strings.Contains(err.Error(), "pattern") {
				t.Fatalf("%q: error %q does not name the pattern", s, err)
			}
			return
		}
		if strings.ContainsRune(glob, '/') || !filepath.IsAbs(dir) || dir != filepath.Clean(dir) || isPattern(dir) {
			t.Fatalf("%q: pattern %q split into directory %q and glob %q", s, a.Namespace, dir, glob)
		}
		want := a.Namespace
		if filepath.IsAbs(want) {
			want = filepath.Clean(want)
		} else if dir != filepath.Clean(nsenter.RunDir) {
			t.Fatalf("%q: name pattern %q split into directory %q, want %s", s, a.Namespace, dir, nsenter.RunDir)
		}
		if got := MemberSpec(dir, glob); got != want && filepath.Join(dir, glob) != want {
			t.Fatalf("%q: pattern %q split into %q and %q, which join to %q", s, a.Namespace, dir, glob, got)
		}
		// The set prints back to the same set.
		if b, err := Parse(a.String()); err != nil || b != a {
			t.Fatalf("%q: set %+v printed as %q, parsed again to %+v, %v", s, a, a.String(), b, err)
		}
	})
}
