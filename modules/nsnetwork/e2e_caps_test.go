package nsnetwork_test

import (
	"encoding/json"
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
)

// The unprivileged user the capability tests run Caddy as: nobody/nogroup
// on Debian and most distributions.
const nobody = 65534

// Capability numbers (linux/capability.h).
var capBits = map[string]uint{"net_bind_service": 10, "net_admin": 12, "sys_admin": 21}

// startAs runs Caddy as uid/gid 65534 with no supplementary groups,
// holding exactly caps (setpriv names: sys_admin, net_bind_service,
// net_admin) as ambient capabilities, bounded to them, with no_new_privs
// set — what a systemd unit with User=, AmbientCapabilities=,
// CapabilityBoundingSet= and NoNewPrivileges=yes gives. It checks the
// running process's credentials before returning.
func startAs(t *testing.T, env []string, caps ...string) *e2e.Process {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("needs setpriv (util-linux)")
	}
	dir, bin := e2e.CopyExecutable(t)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	set := "-all"
	var want uint64
	for _, c := range caps {
		set += ",+" + c
		want |= 1 << capBits[c]
	}
	id := strconv.Itoa(nobody)
	p := e2e.StartProcessWith(t, e2e.ProcessOptions{
		Wrapper: []string{"setpriv", "--reuid", id, "--regid", id, "--clear-groups",
			"--inh-caps", set, "--ambient-caps", set, "--bounding-set", set, "--no-new-privs"},
		Binary: bin, Dir: home, Env: env,
	})

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	wantCaps := fmt.Sprintf("%016x", want)
	for k, v := range map[string]string{
		"Uid": fmt.Sprintf("%d %d %d %d", nobody, nobody, nobody, nobody),
		"Gid": fmt.Sprintf("%d %d %d %d", nobody, nobody, nobody, nobody), "Groups": "",
		"CapEff": wantCaps, "CapPrm": wantCaps, "CapAmb": wantCaps, "CapBnd": wantCaps,
		"NoNewPrivs": "1",
	} {
		if fields[k] != v {
			t.Fatalf("caddy's %s is %q, want %q", k, fields[k], v)
		}
	}
	return p
}

// capsConfig exercises everything that needs a privilege: a TCP and a UDP
// listener on port 80 inside ns (CAP_SYS_ADMIN to enter, the namespace's
// ports below 1024 need CAP_NET_BIND_SERVICE), a route chosen by the netns
// matcher on port 8000 (SIOCGSKNS: CAP_NET_ADMIN) and a netns_proxy on
// port 8001 dialing into ns2 (CAP_SYS_ADMIN), all under an allow list.
func capsConfig(admin *e2e.Admin, allow []string, ns, ns2 string, b backend) string {
	own := fmt.Sprintf("127.0.0.1:%d", b.port)
	servers := map[string]any{
		"lowtcp": map[string]any{"listen": []string{"netns/" + ns + "/tcp/127.0.0.1:80"},
			"routes": []any{map[string]any{"handle": []any{proxyTo(own)}}}},
		"lowudp": map[string]any{"listen": []string{"netns/" + ns + "/udp/127.0.0.1:80"},
			"routes": []any{map[string]any{"handle": []any{proxyTo("udp/" + own)}}}},
		"match": map[string]any{"listen": []string{"netns/" + ns + "/tcp/127.0.0.1:8000"},
			"routes": []any{map[string]any{
				"match":  []any{map[string]any{"netns": []string{ns}}},
				"handle": []any{proxyTo(own)}}}},
		"up": map[string]any{"listen": []string{"netns/" + ns + "/tcp/127.0.0.1:8001"},
			"routes": []any{map[string]any{"handle": []any{netnsProxyTo("netns/" + ns2 + "/tcp/127.0.0.1:9000")}}}},
	}
	m := map[string]any{"layer4": map[string]any{"servers": servers}}
	if allow != nil {
		m["netns"] = map[string]any{"allow": allow}
	}
	apps, _ := json.Marshal(m)
	return fmt.Sprintf(`{%s,"apps":%s}`, admin.WithAdmin(), apps)
}

// Caddy as an unprivileged user holding CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE
// and CAP_NET_ADMIN, and nothing else, with no_new_privs: listeners on a
// low port in a namespace, the netns matcher and netns_proxy into another
// namespace all work. The process-wide ceiling CADDY_NETNS_ALLOW holds
// against a config that allows more.
func TestUnprivilegedUserWithCapabilities(t *testing.T) {
	nstest.Require(t)
	nss := nstest.Add(t, 3)
	ns, ns2, outside := nss[0], nss[1], nss[2]
	b := startBackend(t, "b")
	startBackendIn(t, ns2, "127.0.0.1:9000", "in-ns2")
	p := startAs(t, []string{allow.CeilingEnv + "=" + ns + "," + ns2},
		"sys_admin", "net_bind_service", "net_admin")

	p.MustLoad(t, capsConfig(&p.Admin, []string{ns, ns2}, ns, ns2, b), "json")
	expectAnswer(t, ns, "tcp", "127.0.0.1:80", "b")
	expectAnswer(t, ns, "udp", "127.0.0.1:80", "b")
	expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "b")
	expectAnswer(t, ns, "tcp", "127.0.0.1:8001", "in-ns2")

	err := p.Load(capsConfig(&p.Admin, []string{ns, ns2, outside}, outside, ns2, b), "json")
	if err == nil || !strings.Contains(err.Error(), outside) || !strings.Contains(err.Error(), "not allowed by "+allow.CeilingEnv) {
		t.Fatalf("a config widening the ceiling: %v", err)
	}
	t.Logf("error: %v", err)
	expectAnswer(t, ns, "tcp", "127.0.0.1:80", "b")
}

// Each capability is needed: without CAP_NET_BIND_SERVICE the port-80
// listeners are refused at load; without CAP_NET_ADMIN the netns matcher
// cannot tell where a connection arrived, so its route never matches,
// while listeners and netns_proxy still work. (Without CAP_SYS_ADMIN:
// TestWithoutCapSysAdmin.)
func TestUnprivilegedUserMissingCapabilities(t *testing.T) {
	nstest.Require(t)
	nss := nstest.Add(t, 2)
	ns, ns2 := nss[0], nss[1]
	b := startBackend(t, "b")
	startBackendIn(t, ns2, "127.0.0.1:9000", "in-ns2")

	t.Run("net_bind_service", func(t *testing.T) {
		p := startAs(t, nil, "sys_admin", "net_admin")
		err := p.Load(capsConfig(&p.Admin, nil, ns, ns2, b), "json")
		if err == nil || !strings.Contains(err.Error(), "CAP_NET_BIND_SERVICE") || !strings.Contains(err.Error(), ns) {
			t.Fatalf("load without CAP_NET_BIND_SERVICE: %v", err)
		}
		t.Logf("error: %v", err)
		expectNoAnswer(t, ns, "tcp", "127.0.0.1:8001")
	})
	t.Run("net_admin", func(t *testing.T) {
		p := startAs(t, nil, "sys_admin", "net_bind_service")
		p.MustLoad(t, capsConfig(&p.Admin, nil, ns, ns2, b), "json")
		expectAnswer(t, ns, "tcp", "127.0.0.1:80", "b")
		expectAnswer(t, ns, "udp", "127.0.0.1:80", "b")
		expectAnswer(t, ns, "tcp", "127.0.0.1:8001", "in-ns2")
		expectNoAnswer(t, ns, "tcp", "127.0.0.1:8000")
	})
}
