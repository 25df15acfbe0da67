package nsmatch

import (
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MatchNetns
		err  string
	}{
		{in: "netns ns1", want: MatchNetns{"ns1"}},
		{in: "netns ns1 /var/run/netns/ns2", want: MatchNetns{"ns1", "/var/run/netns/ns2"}},
		{in: "netns", err: "wrong argument count"},
		{in: "netns a/b", err: "want a name under"},
		{in: "netns ns1 {\n\tfoo\n}", err: "blocks are not supported"},
	} {
		var m MatchNetns
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !reflect.DeepEqual(m, tc.want):
			t.Errorf("%q: %v, want %v", tc.in, m, tc.want)
		}
	}
}

func TestArrivalIs(t *testing.T) {
	a := Arrival{Name: "ns1", Paths: []string{"/var/run/netns/ns1", "/proc/1/ns/net"}}
	for spec, want := range map[string]bool{
		"ns1": true, "/var/run/netns/ns1": true, "/var/run/netns//ns1": true, "/proc/1/ns/net": true,
		"ns2": false, "": false, "a/b": false,
	} {
		if got := a.Is(spec); got != want {
			t.Errorf("Is(%q) = %v, want %v", spec, got, want)
		}
	}
}
