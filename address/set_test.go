package address

import (
	"strings"
	"testing"
)

func TestSetPattern(t *testing.T) {
	for _, tc := range []struct {
		in        string
		set       bool
		dir, glob string
		err       string
	}{
		{in: "ns1"},
		{in: "/var/run/netns/ns1"},
		{in: "*", set: true, dir: "/var/run/netns", glob: "*"},
		{in: "tenant-*", set: true, dir: "/var/run/netns", glob: "tenant-*"},
		{in: "t?-*", set: true, dir: "/var/run/netns", glob: "t?-*"},
		{in: "/run/docker/netns/*", set: true, dir: "/run/docker/netns", glob: "*"},
		{in: "/run/*/netns/x*", set: true, err: "last path element"},
		{in: `t\*`, set: true, err: "only the wildcards"},
	} {
		a := Address{Namespace: tc.in, Network: "tcp", StartPort: 1, EndPort: 1}
		if a.IsSet() != tc.set {
			t.Errorf("%q: IsSet = %v", tc.in, a.IsSet())
		}
		if !tc.set {
			continue
		}
		dir, glob, err := a.SetPattern()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || dir != tc.dir || glob != tc.glob {
			t.Errorf("%q: %q %q %v; want %q %q", tc.in, dir, glob, err, tc.dir, tc.glob)
		}
	}
	// Patterns go through the grammar like names.
	a, err := Parse("netns/tenant-*/udp/:53")
	if err != nil || !a.IsSet() || a.Namespace != "tenant-*" {
		t.Errorf("ParseAddress: %+v, %v", a, err)
	}
}
