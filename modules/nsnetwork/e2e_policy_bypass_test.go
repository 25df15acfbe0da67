package nsnetwork_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// hostileMountNS starts a process in a private mount namespace of its own
// in which namespace over is bind-mounted on /run/netns/<at>, and whose
// working directory is /run/netns. Seen through /proc/<pid>/root (or cwd),
// the name at is then the namespace over, while for everyone else it is
// still at. The process is killed when the test ends.
func hostileMountNS(t *testing.T, at, over string) int {
	t.Helper()
	script := fmt.Sprintf("mount --bind /run/netns/%s /run/netns/%s && cd /run/netns && echo ready && exec sleep 600", over, at)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("process in a private mount namespace did not get ready: %q %v", buf, err)
	}
	pid := cmd.Process.Pid
	// The bind mount is visible through the process's root, not here.
	view := fmt.Sprintf("/proc/%d/root/run/netns/%s", pid, at)
	if id, err := nsenter.StatID(view); err != nil || id != nstest.ID(t, over) {
		t.Fatalf("%s is %v (%v), want %s's namespace", view, id, err, over)
	}
	if nstest.ID(t, at) == nstest.ID(t, over) {
		t.Fatalf("the bind mount leaked into this mount namespace")
	}
	return pid
}

// A hostile config cannot reach a namespace outside its allow list (or the
// CADDY_NETNS_ALLOW ceiling) by spelling an allowed name through another
// process's view of the file system, dot segments, doubled slashes,
// symbolic links to directories or files, or /proc/self and
// /proc/thread-self. Each attempt is made as a listener and as a
// netns_proxy upstream, with the config's list and with the ceiling; all
// must be refused with an error saying so, and no socket may appear in the
// namespace the spelling really leads to. The same spellings of the
// allowed namespace itself, through this process's own view, still load.
func TestAllowListBypassAttempts(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	a, b := nss[0], nss[1]
	bID := nstest.ID(t, b)
	pid := hostileMountNS(t, a, b)
	p := strconv.Itoa(pid)
	backend := startBackend(t, "own")
	own := fmt.Sprintf("127.0.0.1:%d", backend.port)
	startBackendIn(t, a, "127.0.0.1:9000", "in-"+a)
	startBackendIn(t, b, "127.0.0.1:9000", "in-"+b)

	// Links an operator might have in a directory the list allows.
	dir := t.TempDir()
	link := func(name, target string) string {
		l := filepath.Join(dir, name)
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	toForeignDir := link("foreign-dir", "/proc/"+p+"/root/run/netns")
	toForeignFile := link("foreign-file", "/proc/"+p+"/root/run/netns/"+a)
	toSelfRoot := link("self-root", "/proc/self/root")
	toAllowed := link("allowed", "/run/netns/"+a)
	outside := t.TempDir()
	toForeignDirOutside := filepath.Join(outside, "netns")
	if err := os.Symlink("/proc/"+p+"/root/run/netns", toForeignDirOutside); err != nil {
		t.Fatal(err)
	}

	withDir := []string{a, dir + "/"}
	attempts := []struct {
		name, path string
		allow      []string
	}{
		{"other process's root", "/proc/" + p + "/root/run/netns/" + a, []string{a}},
		{"doubled slashes", "/proc/" + p + "/root//run//netns/" + a, []string{a}},
		{"dot-dot", "/proc/" + p + "/root/run/netns/../netns/" + a, []string{a}},
		{"trailing /.", "/proc/" + p + "/root/run/netns/" + a + "/.", []string{a}},
		{"other process's cwd", "/proc/" + p + "/cwd/" + a, []string{a}},
		{"other process's thread root", "/proc/" + p + "/task/" + p + "/root/run/netns/" + a, []string{a}},
		{"through /proc/self/root", "/proc/self/root/proc/" + p + "/root/run/netns/" + a, []string{a}},
		{"through /proc/thread-self/root", "/proc/thread-self/root/proc/" + p + "/root/run/netns/" + a, []string{a}},
		{"symlinked directory outside the list", toForeignDirOutside + "/" + a, []string{a}},
		{"symlinked directory in an allowed directory", toForeignDir + "/" + a, withDir},
		{"symlink in an allowed directory", toForeignFile, withDir},
		{"allowed directory, then /proc/self/root", toSelfRoot + "/proc/" + p + "/root/run/netns/" + a, withDir},
		{"allowed directory, dot-dot out", dir + strings.Repeat("/..", strings.Count(dir, "/")) + "/proc/" + p + "/root/run/netns/" + a, withDir},
	}
	type mode struct {
		name string
		load func(list []string, path string) string
	}
	listener := func(path string) map[string]policyServer {
		return map[string]policyServer{"s": {[]string{"netns/" + path + "/tcp/127.0.0.1:8000"}, proxyTo(own)}}
	}
	upstream := func(path string) map[string]policyServer {
		return map[string]policyServer{"s": {[]string{"netns/" + a + "/tcp/127.0.0.1:8001"}, netnsProxyTo("netns/" + path + "/tcp/127.0.0.1:9000")}}
	}
	modes := []mode{
		{"listener, config list", func(list []string, path string) string { return policyConfig(admin, list, listener(path)) }},
		{"upstream, config list", func(list []string, path string) string { return policyConfig(admin, list, upstream(path)) }},
		{"listener, ceiling", func(list []string, path string) string {
			t.Setenv(allow.CeilingEnv, strings.Join(list, " "))
			return policyConfig(admin, nil, listener(path))
		}},
	}

	tried, refused := 0, 0
	for _, m := range modes {
		for _, at := range attempts {
			t.Run(m.name+"/"+at.name, func(t *testing.T) {
				tried++
				// nsenter.Path cleans a path lexically before it is opened.
				if id, err := nsenter.StatID(filepath.Clean(at.path)); err != nil || id != bID {
					t.Fatalf("the attempt is broken: %s is %v (%v), not %s", at.path, id, err, b)
				}
				err := admin.Load(m.load(at.allow, at.path), "json")
				t.Setenv(allow.CeilingEnv, "")
				ok := err != nil && strings.Contains(err.Error(), "not allowed")
				for _, s := range nsnetwork.Sockets() {
					if s.NamespaceID == bID {
						ok = false
						t.Errorf("socket %s %s open in %s", s.Network, s.Address, b)
					}
				}
				if err == nil {
					if reply, aerr := ask(a, "tcp", "127.0.0.1:8001", "x"); aerr == nil {
						t.Errorf("the upstream answered %q", reply)
					}
				}
				if !ok {
					t.Errorf("%s with allow %v: load %v, want refused as not allowed", at.path, at.allow, err)
					return
				}
				refused++
				t.Logf("refused: %v", err)
			})
		}
	}
	line := fmt.Sprintf("reliability: allow-list bypass attempts: %d, refused: %d", tried, refused)
	t.Log(line)
	fmt.Println(line)

	// The allowed namespace itself, spelled through this process's own
	// view, still loads.
	for _, path := range []string{a, "/run/netns/" + a, "/var/run/netns/" + a, "//run/netns/" + a, "/run/netns/x/../" + a, toAllowed} {
		t.Run("allowed "+path, func(t *testing.T) {
			admin.MustLoad(t, policyConfig(admin, withDir, listener(path)), "json")
			expectAnswer(t, a, "tcp", "127.0.0.1:8000", "own")
			admin.MustLoad(t, policyConfig(admin, withDir, upstream(path)), "json")
			expectAnswer(t, a, "tcp", "127.0.0.1:8001", "in-"+a)
		})
	}
}
