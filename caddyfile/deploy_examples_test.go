package caddyfile_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The capabilities TestUnprivilegedUserWithCapabilities (modules/nsnetwork)
// proves sufficient, and its sibling tests each necessary.
var minimalCaps = []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}

// The systemd unit grants exactly those capabilities, as ambient ones to a
// non-root user, with no way to gain others; systemd accepts every
// directive (systemd-analyze verify, where it is installed).
func TestSystemdUnit(t *testing.T) {
	const unit = "../examples/systemd/caddy-netns.service"
	keys := map[string][]string{}
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	f.Close()
	for _, k := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
		got := strings.Fields(strings.Join(keys[k], " "))
		slices.Sort(got)
		if !slices.Equal(got, minimalCaps) {
			t.Errorf("%s = %v, want %v", k, got, minimalCaps)
		}
	}
	for k, want := range map[string]string{"User": "caddy", "NoNewPrivileges": "yes", "PrivateUsers": "no", "RestrictNamespaces": "net"} {
		if got := strings.Join(keys[k], " "); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: directives not verified")
		return
	}
	// verify checks the commands exist: point them at one that does.
	src, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), filepath.Base(unit))
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(src), "/usr/local/bin/caddy", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The DaemonSet mounts the runtime's namespace directory with
// HostToContainer propagation, grants CAP_SYS_ADMIN alone, and its
// embedded Caddyfile adapts.
func TestKubernetesDaemonSet(t *testing.T) {
	b, err := os.ReadFile("../examples/kubernetes/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(b)
	for _, want := range []string{
		"mountPath: /var/run/netns", "mountPropagation: HostToContainer", "path: /var/run/netns",
		`drop: ["ALL"]`, `add: ["SYS_ADMIN"]`, "allowPrivilegeEscalation: false",
		"hostPID: false", "hostUsers: true", "name: CADDY_NETNS_ALLOW",
	} {
		if !strings.Contains(manifest, want) {
			t.Errorf("daemonset.yaml lacks %q", want)
		}
	}

	// The Caddyfile is the block under "Caddyfile: |", indented 4 spaces.
	var caddyfile strings.Builder
	in := false
	for _, line := range strings.Split(manifest, "\n") {
		switch {
		case strings.TrimSpace(line) == "Caddyfile: |":
			in = true
		case in && (strings.HasPrefix(line, "    ") || strings.TrimSpace(line) == ""):
			caddyfile.WriteString(strings.TrimPrefix(line, "    ") + "\n")
		case in:
			in = false
		}
	}
	if caddyfile.Len() == 0 {
		t.Fatal("no Caddyfile in the ConfigMap")
	}
	_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile.String()), map[string]any{"filename": "daemonset.yaml"})
	if err != nil {
		t.Fatalf("the ConfigMap's Caddyfile: %v\n%s", err, caddyfile.String())
	}
	for _, w := range warnings {
		t.Errorf("the ConfigMap's Caddyfile:%d: %s", w.Line, w.Message)
	}
}
