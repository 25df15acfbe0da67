package address

import (
	"slices"
	"strings"
	"testing"
)

// A list address names namespaces one by one, separated by commas; what
// Caddy's parser hands the network plugin parses back to the list.
func TestList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"netns/a,b,c/tcp/:8000", []string{"a", "b", "c"}, ""},
		{"netns/a,b,a/udp/:53", []string{"a", "b"}, ""},
		{"netns//run/netns/a,/run/netns/b/tcp/:80", []string{"/run/netns/a", "/run/netns/b"}, ""},
		{"netns/a,/run/netns/b/tcp/:80", []string{"a", "/run/netns/b"}, ""},
		{"netns/a,,b/tcp/:80", nil, "empty element"},
		{"netns/a,/b/tcp/:80", nil, ""}, // /b is an absolute path
		{"netns/a,tenant-*/tcp/:80", nil, "is a pattern"},
		{"netns/a,x/y/tcp/:80", nil, "want a name under"},
	} {
		a, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !a.IsList() || a.IsSet() {
			t.Errorf("%q: IsList %v, IsSet %v", tc.in, a.IsList(), a.IsSet())
		}
		got, err := a.List()
		if err != nil {
			t.Errorf("%q: List: %v", tc.in, err)
		}
		if tc.want != nil && !slices.Equal(got, tc.want) {
			t.Errorf("%q: List = %q, want %q", tc.in, got, tc.want)
		}
	}
	if a, _ := Parse("netns/a/tcp/:80"); a.IsList() {
		t.Error("a single namespace is a list")
	}
}
