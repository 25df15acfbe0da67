package nsproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4/modules/l4clock"
	_ "github.com/mholt/caddy-l4/modules/l4close"
	_ "github.com/mholt/caddy-l4/modules/l4dns"
	_ "github.com/mholt/caddy-l4/modules/l4echo"
	_ "github.com/mholt/caddy-l4/modules/l4http"
	_ "github.com/mholt/caddy-l4/modules/l4openvpn"
	_ "github.com/mholt/caddy-l4/modules/l4postgres"
	_ "github.com/mholt/caddy-l4/modules/l4proxy"
	_ "github.com/mholt/caddy-l4/modules/l4proxyprotocol"
	_ "github.com/mholt/caddy-l4/modules/l4quic"
	_ "github.com/mholt/caddy-l4/modules/l4rdp"
	_ "github.com/mholt/caddy-l4/modules/l4regexp"
	_ "github.com/mholt/caddy-l4/modules/l4ssh"
	_ "github.com/mholt/caddy-l4/modules/l4subroute"
	_ "github.com/mholt/caddy-l4/modules/l4tee"
	_ "github.com/mholt/caddy-l4/modules/l4throttle"
	_ "github.com/mholt/caddy-l4/modules/l4tls"
	_ "github.com/mholt/caddy-l4/modules/l4vars"
	_ "github.com/mholt/caddy-l4/modules/l4winbox"
	_ "github.com/mholt/caddy-l4/modules/l4wireguard"
	_ "github.com/mholt/caddy-l4/modules/l4xmpp"
)

// Every proxy handler of caddy-l4's own Caddyfile adapt tests loads into
// netns_proxy unchanged, in JSON (caddy-l4's expected output, dial arrays
// and all) and in the Caddyfile (the proxy directive renamed), both forms
// give the same handler, and it provisions: several addresses in one dial,
// local_address and close_if_unhealthy included.
func TestCaddyL4ProxyConfigsLoadUnchanged(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/mholt/caddy-l4").Output()
	if err != nil {
		t.Fatalf("finding caddy-l4's source with `go list -m`: %v (run the tests with the go command on PATH)", err)
	}
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "integration", "caddyfile_adapt", "*.caddytest"))
	// Their matcher modules are left out of this test binary (it would add a
	// dependency): only the JSON form is checked.
	jsonOnly := map[string]bool{"gd_matcher_remoteiplist.caddytest": true, "gd_matcher_socks.caddytest": true}
	directive := regexp.MustCompile(`(?m)^(\s*)proxy(\s)`)
	var n int
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		caddyfileSrc, jsonSrc, ok := bytes.Cut(data, []byte("\n----------\n"))
		if !ok || !directive.Match(caddyfileSrc) {
			continue
		}
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".caddytest"), func(t *testing.T) {
			n++
			fromJSON, jerr := handlersIn(bytes.ReplaceAll(jsonSrc, []byte(`"handler": "proxy"`), []byte(`"handler": "netns_proxy"`)))
			adapted, _, aerr := caddyconfig.GetAdapter("caddyfile").Adapt(directive.ReplaceAll(caddyfileSrc, []byte("${1}netns_proxy$2")), nil)
			if jerr != nil {
				t.Fatalf("caddy-l4's JSON: %v", jerr)
			}
			// And each handler provisions: the config would load.
			for _, raw := range fromJSON {
				if err := provision(raw); err != nil {
					t.Errorf("provisioning %s: %v", raw, err)
				}
			}
			if jsonOnly[name] {
				if len(fromJSON) == 0 {
					t.Fatal("no proxy handler in the JSON")
				}
				return
			}
			if aerr != nil {
				t.Fatalf("caddy-l4's Caddyfile: %v", aerr)
			}
			fromCaddyfile, err := handlersIn(adapted)
			if err != nil {
				t.Fatalf("adapted Caddyfile: %v", err)
			}
			if len(fromJSON) == 0 || strings.Join(fromJSON, "\n") != strings.Join(fromCaddyfile, "\n") {
				t.Errorf("JSON gives\n%s\nCaddyfile gives\n%s", strings.Join(fromJSON, "\n"), strings.Join(fromCaddyfile, "\n"))
			}
		})
	}
	if n < 30 {
		t.Fatalf("only %d of caddy-l4's adapt tests use proxy; expected over 30 in v0.1.2", n)
	}
}

// provision provisions a netns_proxy handler from its JSON, as a config
// load would, and unloads it.
func provision(raw string) error {
	var h Handler
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return err
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		return err
	}
	return h.Cleanup()
}

// handlersIn decodes, as Caddy does (unknown fields refused), every
// netns_proxy handler in a JSON config, and returns each re-encoded.
func handlersIn(config []byte) ([]string, error) {
	var tree any
	if err := json.Unmarshal(config, &tree); err != nil {
		return nil, err
	}
	var found []string
	var walk func(any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "netns_proxy" {
				delete(v, "handler")
				raw, _ := json.Marshal(v)
				var h Handler
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&h); err != nil {
					return err
				}
				out, _ := json.Marshal(&h)
				found = append(found, string(out))
				return nil
			}
			for _, k := range sortedKeys(v) {
				if err := walk(v[k]); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return found, walk(tree)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// A local_address that is not an address fails the load naming it.
func TestLocalAddressBad(t *testing.T) {
	for _, la := range []string{"not-an-ip", "tcp/10.0.0.1", "10.0.0.1:x"} {
		err := provision(`{"upstreams":[{"dial":["127.0.0.1:9"],"local_address":["` + la + `"]}]}`)
		if err == nil || !strings.Contains(err.Error(), `local_address "`+la+`"`) {
			t.Errorf("local_address %q: %v; want an error naming it", la, err)
		}
	}
}
