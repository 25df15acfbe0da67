package nsnetwork_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// One Caddy listens on the same address in several namespaces and in its
// own, TCP and UDP, each routed by caddy-l4 to its own backend. A client in
// each namespace reaches its listener; the namespaces' listeners cannot be
// reached from outside.
func TestListenersInNamespacesAnswerTCPAndUDP(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	routes := map[string]route{}
	for _, ns := range nss {
		nsRoutes(routes, ns, "127.0.0.1:8000", startBackend(t, ns))
	}
	own := startBackend(t, "own")
	routes["own-tcp"] = route{[]string{"tcp/127.0.0.1:18000"}, fmt.Sprintf("127.0.0.1:%d", own.port)}
	admin.MustLoad(t, layer4Config(admin, routes), "json")

	for _, ns := range nss {
		expectAnswer(t, ns, "tcp", "127.0.0.1:8000", ns)
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", ns)
		// The namespace's own port 18000 is not Caddy's listener there.
		expectNoAnswer(t, ns, "tcp", "127.0.0.1:18000")
	}
	expectAnswer(t, "", "tcp", "127.0.0.1:18000", "own")
	expectNoAnswer(t, "", "tcp", "127.0.0.1:8000")
}

// Reloads through the admin API: addresses in both configs keep their
// socket and an open connection keeps working; added namespaces start
// answering, removed ones stop; a config naming a missing namespace fails
// with a clear error and the old config keeps serving.
func TestReloads(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	b := startBackend(t, "b")

	cfg := func(names ...string) string {
		routes := map[string]route{}
		for _, ns := range names {
			nsRoutes(routes, ns, "127.0.0.1:8000", b)
		}
		return layer4Config(admin, routes)
	}
	admin.MustLoad(t, cfg(nss[0], nss[1]), "json")
	held, err := dialIn(nss[0], "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got, err := askOn(held, "before"); got != "b: before" {
		t.Fatalf("held connection: %q, %v", got, err)
	}

	for i := range 5 {
		admin.MustLoad(t, cfg(nss[0], nss[2]), "json")
		expectAnswer(t, nss[2], "tcp", "127.0.0.1:8000", "b")
		expectAnswer(t, nss[2], "udp", "127.0.0.1:8000", "b")
		expectNoAnswer(t, nss[1], "tcp", "127.0.0.1:8000")
		admin.MustLoad(t, cfg(nss[0], nss[1]), "json")
		expectAnswer(t, nss[1], "tcp", "127.0.0.1:8000", "b")
		if got, err := askOn(held, fmt.Sprintf("reload %d", i)); got != fmt.Sprintf("b: reload %d", i) {
			t.Fatalf("held connection after reload %d: %q, %v", i, got, err)
		}
	}

	missing := nstest.Name("nlt-missing")
	err = admin.Load(cfg(nss[0], missing), "json")
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("loading a config with a missing namespace: %v", err)
	}
	expectAnswer(t, nss[0], "tcp", "127.0.0.1:8000", "b")
	expectAnswer(t, nss[1], "udp", "127.0.0.1:8000", "b")
	if got, err := askOn(held, "after failed load"); got != "b: after failed load" {
		t.Fatalf("held connection after a failed load: %q, %v", got, err)
	}
}

// A namespace deleted and re-created under the same name is a new
// namespace: the next load opens a fresh socket in it and the socket in the
// old one is released.
func TestRecreatedNamespaceGetsFreshSocket(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	b := startBackend(t, "b")
	routes := map[string]route{}
	nsRoutes(routes, ns, "127.0.0.1:8000", b)
	cfg := layer4Config(admin, routes)
	admin.MustLoad(t, cfg, "json")
	old := nstest.ID(t, ns)
	expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "b")

	nstest.Del(ns)
	nstest.Batch(t, "netns add "+ns+"\n")
	if err := nstest.LoopbackUp(ns); err != nil {
		t.Fatal(err)
	}
	if nstest.ID(t, ns) == old {
		t.Fatal("re-created namespace has the old identity")
	}
	expectNoAnswer(t, ns, "tcp", "127.0.0.1:8000")

	admin.MustLoad(t, cfg, "json")
	expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "b")
	expectAnswer(t, ns, "udp", "127.0.0.1:8000", "b")
	for _, s := range nsnetwork.Sockets() {
		if s.NamespaceID == old {
			t.Errorf("socket %s %s still open in the deleted namespace", s.Network, s.Address)
		}
	}
}

// Port ranges and the bracketed IPv6 form.
func TestPortRangeAndIPv6(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	b := startBackend(t, "b")
	dial := fmt.Sprintf("127.0.0.1:%d", b.port)
	admin.MustLoad(t, layer4Config(admin, map[string]route{
		"range": {[]string{"netns/" + ns + "/tcp/127.0.0.1:8100-8102"}, dial},
		"v6":    {[]string{"netns/[" + ns + "/tcp6/::1]:8200"}, dial},
		"path":  {[]string{"netns//var/run/netns/" + ns + "/udp/127.0.0.1:8300"}, "udp/" + dial},
	}), "json")
	for _, port := range []string{"8100", "8101", "8102"} {
		expectAnswer(t, ns, "tcp", "127.0.0.1:"+port, "b")
	}
	expectAnswer(t, ns, "tcp", "[::1]:8200", "b")
	expectAnswer(t, ns, "udp", "127.0.0.1:8300", "b")
}

// Caddy's http app serves from inside a namespace.
func TestHTTPAppInNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	admin.MustLoad(t, fmt.Sprintf(`{%s,"apps":{"http":{"servers":{"ns":{
		"listen":["netns/%s/tcp/127.0.0.1:8080"],
		"routes":[{"handle":[{"handler":"static_response","body":"hello from {http.request.host}"}]}]
	}}}}}`, admin.WithAdmin(), ns), "json")

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ns, network, addr)
		},
	}}
	resp, err := client.Get("http://127.0.0.1:8080/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from 127.0.0.1" {
		t.Fatalf("body %q", body)
	}
	if _, err := http.Get("http://127.0.0.1:8080/"); err == nil {
		t.Fatal("the namespace's HTTP server answered from outside")
	}
}

// Bad input: each config fails to load with an error that names the address
// and says what is wrong, and the running config keeps serving.
func TestBadConfigsAreRefusedAndOldConfigServes(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	b := startBackend(t, "b")
	good := map[string]route{}
	nsRoutes(good, ns, "127.0.0.1:8000", b)
	admin.MustLoad(t, layer4Config(admin, good), "json")

	dir := t.TempDir()
	for _, tc := range []struct{ listen, want string }{
		{"netns/" + ns + "/quic/:8001", `unknown network "quic"`},
		{"netns//tcp/:8001", "empty namespace"},
		{"netns/tcp/:8001", "missing namespace or network"},
		{"netns/nlt-nosuch/tcp/:8001", "does not exist"},
		{"netns/" + dir + "/tcp/:8001", "is a directory"},
		{"netns//proc/self/ns/mnt/tcp/:8001", "is a mount namespace"},
		{"netns//etc/hostname/tcp/:8001", "is not a namespace file"},
		{"netns/" + ns + "/tcp/:99999", "out of range"},
		{"netns/" + ns + "/tcp/192.0.2.1:8001", "cannot assign requested address"},
		{"netns/" + ns + "/tcp/127.0.0.1:8001-8002", ""}, // the control: this one loads
	} {
		routes := map[string]route{"bad": {[]string{tc.listen}, fmt.Sprintf("127.0.0.1:%d", b.port)}}
		for k, v := range good {
			routes[k] = v
		}
		err := admin.Load(layer4Config(admin, routes), "json")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.listen, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.listen, err, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), "netns"):
			t.Errorf("%s: error %q does not name the address", tc.listen, err)
		}
		expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "b")
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", "b")
	}

	// The Caddyfile is checked the same way.
	err := admin.Load(fmt.Sprintf("{\n\t%s\n\tlayer4 {\n\t\tnetns/%s/sctq/:9000 {\n\t\t\troute {\n\t\t\t\techo\n\t\t\t}\n\t\t}\n\t}\n}\n",
		"admin "+strings.TrimPrefix(admin.URL, "http://"), ns), "caddyfile")
	if err == nil || !strings.Contains(err.Error(), `unknown network "sctq"`) {
		t.Errorf("Caddyfile with a bad network: %v", err)
	}
	expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "b")
}

// Listeners in 200 namespaces: the OS thread count stays within a small
// constant of what it was, and every listener answers.
func TestThreadsStayFlatWith200Namespaces(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 200)
	b := startBackend(t, "b")
	admin.MustLoad(t, layer4Config(admin, nil), "json")
	before := nstest.Threads(t)

	routes := map[string]route{}
	for _, ns := range nss {
		nsRoutes(routes, ns, "127.0.0.1:8000", b)
	}
	admin.MustLoad(t, layer4Config(admin, routes), "json")
	after := nstest.Threads(t)
	for _, ns := range nss[:20] {
		expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "b")
	}
	final := nstest.Threads(t)
	t.Logf("OS threads: %d before, %d after 400 listeners in 200 namespaces, %d after traffic", before, after, final)
	if after > before+8 || final > before+8 {
		t.Errorf("threads grew from %d to %d (%d after traffic); threads by system call: %v",
			before, after, final, nstest.ThreadSyscalls())
	}
}

// Without CAP_SYS_ADMIN a config that listens in a namespace fails to load
// with an error naming the capability and the namespace, whether Caddy
// runs as root without it or as an unprivileged user holding the other
// capabilities (startAs); nothing the refused config opened through the
// netns network stays open, and Caddy keeps running its old config.
func TestWithoutCapSysAdmin(t *testing.T) {
	nstest.Require(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("needs setpriv (util-linux)")
	}
	ns := nstest.Add(t, 1)[0]
	b := startBackend(t, "b")
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *e2e.Process
	}{
		{"root", func(t *testing.T) *e2e.Process {
			return e2e.StartProcess(t, "setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin")
		}},
		{"nobody", func(t *testing.T) *e2e.Process { return startAs(t, nil, "net_bind_service", "net_admin") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.start(t)
			own := map[string]route{"own": {[]string{"tcp/127.0.0.1:18001"}, fmt.Sprintf("127.0.0.1:%d", b.port)}}
			p.MustLoad(t, layer4Config(&p.Admin, own), "json")

			routes := map[string]route{"own": own["own"],
				// Caddy's own namespace needs no privilege: this one
				// opens, unless the failing server starts first.
				"ownns": {[]string{"netns//proc/self/ns/net/tcp/127.0.0.1:18002"}, fmt.Sprintf("127.0.0.1:%d", b.port)}}
			nsRoutes(routes, ns, "127.0.0.1:8000", b)
			err := p.Load(layer4Config(&p.Admin, routes), "json")
			if err == nil || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") || !strings.Contains(err.Error(), ns) {
				t.Fatalf("load without CAP_SYS_ADMIN: %v", err)
			}
			t.Logf("error: %v", err)
			expectAnswer(t, "", "tcp", "127.0.0.1:18001", "b")
			expectNoAnswer(t, "", "tcp", "127.0.0.1:18002")
		})
	}
}
