package nspolicy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfile(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"netns {\n allow ns1 tenant-*\n allow /var/run/docker/netns/\n}", ""},
		{"netns", ""},
		{"netns ns1", "wrong argument count"},
		{"netns {\n allow\n}", "wrong argument count"},
		{"netns {\n allow a/b\n}", `netns allow "a/b": want a name`},
		{"netns {\n deny ns1\n}", `unknown netns option "deny"`},
	} {
		var a App
		err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	var a App
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("netns {\n allow ns1 tenant-*\n allow /x/\n}")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.Allow, " "); got != "ns1 tenant-* /x/" {
		t.Errorf("allow %q", got)
	}
}

// A netns app without an allow field allows every namespace (its
// documented default), also when it only holds metrics settings; an
// explicit empty list allows none.
func TestNoAllowFieldAllowsEverything(t *testing.T) {
	for _, tc := range []struct {
		json   string
		isNil  bool
		reason string
	}{
		{`{"metrics":{"per_namespace":false}}`, true, "no allow field"},
		{`{}`, true, "no allow field"},
		{`{"allow":[]}`, false, "an explicit empty list"},
		{`{"allow":["ns1"]}`, false, "a list"},
	} {
		var a App
		if err := json.Unmarshal([]byte(tc.json), &a); err != nil {
			t.Fatal(err)
		}
		if err := a.Provision(caddy.Context{}); err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := a.AllowList() == nil; got != tc.isNil {
			t.Errorf("%s (%s): allow list nil %v, want %v (nil allows every namespace)", tc.json, tc.reason, got, tc.isNil)
		}
	}
}
