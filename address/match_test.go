package address

import "testing"

func TestMatchNamespace(t *testing.T) {
	for _, c := range []struct {
		spec, path string
		want       bool
	}{
		{"ns1", "/var/run/netns/ns1", true},
		{"/var/run/netns/ns1", "/var/run/netns/ns1", true},
		{"/var/run/netns//ns1", "/var/run/netns/ns1", true},
		{"ns1", "/var/run/netns/ns2", false},
		{"tenant-*", "/var/run/netns/tenant-a", true},
		{"tenant-?", "/var/run/netns/tenant-a", true},
		{"tenant-*", "/var/run/netns/other", false},
		{"/run/x/*", "/run/x/a", true},
		{"*", "/run/x/a", false},
		{"[t]enant-a", "/var/run/netns/tenant-a", false},
		{`\tenant-a`, "/var/run/netns/tenant-a", false},
		{"[t]enant-a", "/var/run/netns/[t]enant-a", true},
		{"", "/var/run/netns/x", false},
		{"../x", "/var/run/x", false},
	} {
		if got := MatchNamespace(c.spec, c.path); got != c.want {
			t.Errorf("MatchNamespace(%q, %q) = %v, want %v", c.spec, c.path, got, c.want)
		}
	}
}
