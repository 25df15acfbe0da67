package caddyfile_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4/modules/l4echo"
	_ "github.com/mholt/caddy-l4/modules/l4proxy"

	_ "github.com/caddy-netns/caddy-netns"
)

// Every example Caddyfile adapts to the caddy.json beside it, so the two
// forms of each example cannot drift apart.
func TestExamplesAdaptToTheirJSON(t *testing.T) {
	files, err := filepath.Glob("../examples/*/Caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example Caddyfiles found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(filepath.Dir(file), "caddy.json"))
			if err != nil {
				t.Fatal(err)
			}
			got, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapting %s: %v", file, err)
			}
			for _, w := range warnings {
				t.Errorf("%s:%d: %s", w.File, w.Line, w.Message)
			}
			if a, b := canonical(t, got), canonical(t, want); a != b {
				t.Errorf("%s adapts to\n%s\nbut caddy.json holds\n%s", file, a, b)
			}
		})
	}
}

// The .caddytest files: a Caddyfile, a line of dashes, the JSON it must
// adapt to (caddy-l4's integration format).
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddytest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .caddytest files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddytest"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.SplitN(string(data), "----------", 2)
			if len(parts) != 2 {
				t.Fatalf("%s: no ---------- separator", file)
			}
			json := strings.TrimSpace(strings.TrimLeft(parts[1], "-"))
			if !caddytest.CompareAdapt(t, file, parts[0], "caddyfile", json) {
				t.Fail()
			}
		})
	}
}

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
