package nshttp

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestTransportCaddyfile(t *testing.T) {
	var tr Transport
	d := caddyfile.NewTestDispenser(`netns {
		proxy_protocol v2
		proxy_protocol_netns
		versions h2c
		read_timeout 5s
	}`)
	if err := tr.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if !tr.ProxyProtocolNetns || tr.ProxyProtocol != "v2" || len(tr.Versions) != 1 || tr.ReadTimeout == 0 {
		t.Errorf("got %+v", tr)
	}
	for _, bad := range []string{
		"netns {\n proxy_protocol_netns yes\n}",
		"netns {\n no_such_option\n}",
	} {
		var tr Transport
		if err := tr.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMatcherCaddyfile(t *testing.T) {
	var m MatchNetns
	if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`netns ns1 tenant-* /proc/1/ns/net`)); err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m.Validate() != nil {
		t.Errorf("got %v", m)
	}
	for _, bad := range []string{"netns", "netns a/b", "netns ns1 {\n\tx\n}"} {
		var m MatchNetns
		if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestUpstreamsCaddyfile(t *testing.T) {
	var u Upstreams
	if err := u.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`netns netns/{http.request.netns.name}/tcp/10.0.0.1:80`)); err != nil || u.Dial != "netns/{http.request.netns.name}/tcp/10.0.0.1:80" {
		t.Fatalf("got %+v, %v", u, err)
	}
	for _, bad := range []string{"netns", "netns a b", "netns a {\n\tx\n}"} {
		if err := new(Upstreams).UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
