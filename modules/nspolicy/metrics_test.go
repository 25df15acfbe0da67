package nspolicy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestMetricsSettings(t *testing.T) {
	for _, tc := range []struct {
		in     string
		on     bool
		max    int
		errSub string
	}{
		{"netns", true, 0, ""},
		{"netns {\n metrics {\n per_namespace off\n }\n}", false, 0, ""},
		{"netns {\n metrics {\n per_namespace on\n }\n}", true, 0, ""},
		{"netns {\n metrics {\n per_namespace 500\n }\n}", true, 500, ""},
		{"netns {\n metrics {\n per_namespace 0\n }\n}", false, 0, `netns metrics per_namespace "0": want on, off or a number`},
		{"netns {\n metrics {\n per_namespace maybe\n }\n}", false, 0, `netns metrics per_namespace "maybe"`},
		{"netns {\n metrics {\n per_namespace\n }\n}", false, 0, "wrong argument count"},
		{"netns {\n metrics {\n per_namespace on off\n }\n}", false, 0, "wrong argument count"},
		{"netns {\n metrics {\n per_socket off\n }\n}", false, 0, `unknown netns metrics option "per_socket"`},
	} {
		var a App
		err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if tc.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errSub) {
				t.Errorf("%q: %v, want %q", tc.in, err, tc.errSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		// Through JSON, as a Caddyfile config reaches the app.
		b, _ := json.Marshal(&a)
		var b2 App
		if err := json.Unmarshal(b, &b2); err != nil {
			t.Fatal(err)
		}
		if on, max := b2.NamespaceMetrics(); on != tc.on || max != tc.max {
			t.Errorf("%q (JSON %s): per-namespace %v, cap %d; want %v, %d", tc.in, b, on, max, tc.on, tc.max)
		}
	}

	var a App
	if err := json.Unmarshal([]byte(`{"metrics":{"max_namespace_series":-1}}`), &a); err != nil {
		t.Fatal(err)
	}
	err := a.Provision(caddy.Context{})
	if err == nil || !strings.Contains(err.Error(), "netns metrics max_namespace_series -1: want 0 (no cap) or more") {
		t.Errorf("negative cap: %v", err)
	}
}
