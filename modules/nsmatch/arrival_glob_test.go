package nsmatch

import "testing"

// Matcher entries with wildcards match like the set addresses they serve.
func TestArrivalIsPattern(t *testing.T) {
	a := Arrival{Name: "tenant-a", Paths: []string{"/var/run/netns/tenant-a"}}
	d := Arrival{Name: "/var/run/docker/netns/abc", Paths: []string{"/var/run/docker/netns/abc"}}
	for _, tc := range []struct {
		a    Arrival
		spec string
		want bool
	}{
		{a, "tenant-*", true},
		{a, "*", true},
		{a, "tenant-?", true},
		{a, "/var/run/netns/t*", true},
		{a, "other-*", false},
		{a, "tenant-??", false},
		{d, "*", false},
		{d, "/var/run/docker/netns/*", true},
		{d, "/var/run/*/netns/abc", true},
	} {
		if got := tc.a.Is(tc.spec); got != tc.want {
			t.Errorf("%s Is(%q) = %v, want %v", tc.a.Name, tc.spec, got, tc.want)
		}
	}
}
