package nsproxy_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// A client in ns1 reaches, through Caddy listening in ns1, a backend that
// exists only inside ns2, over TCP and UDP; caddy-l4's own proxy cannot.
func TestClientInNs1ReachesBackendOnlyInNs2(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	ns1, ns2 := nss[0], nss[1]
	startBackend(t, ns2, "127.0.0.1:9000", "ns2")
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"tcp": proxyServer([]string{"netns/" + ns1 + "/tcp/127.0.0.1:8000"},
			`{"handler":"netns_proxy","upstreams":[{"dial":"netns/`+ns2+`/tcp/127.0.0.1:9000"}]}`),
		"udp": proxyServer([]string{"netns/" + ns1 + "/udp/127.0.0.1:8000"},
			`{"handler":"netns_proxy","upstreams":[{"dial":"netns/`+ns2+`/udp/127.0.0.1:9000"}]}`),
	}), "json")
	expectAnswer(t, ns1, "tcp", "127.0.0.1:8000", "ns2")
	expectAnswer(t, ns1, "udp", "127.0.0.1:8000", "ns2")
	// Several lines on one connection, and a second UDP flow.
	c, err := dialIn(ns1, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if got, err := askOn(c, fmt.Sprint(i)); got != fmt.Sprintf("ns2: %d", i) {
			t.Fatalf("line %d: %q, %v", i, got, err)
		}
	}
	expectAnswer(t, ns1, "udp", "127.0.0.1:8000", "ns2")
	// The backend is not reachable from ns1 directly.
	if _, err := ask(ns1, "tcp", "127.0.0.1:9000", "x"); err == nil {
		t.Fatal("backend reachable from ns1 without the proxy")
	}
}

// One server listens in three namespaces (one listen address each, TCP and
// UDP); a route with the netns matcher sends the first namespace's traffic
// to a backend of its own, and a catch-all route sends every other
// namespace to the backend inside it by the {l4.netns.name} placeholder.
// Loaded as a Caddyfile.
func TestThreeNamespacesRoutedByMatcherAndPlaceholder(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	for _, ns := range nss {
		startBackend(t, ns, "127.0.0.1:9000", "in-"+ns)
	}
	startBackend(t, "", "127.0.0.1:19077", "special")
	var listen []string
	for _, ns := range nss {
		listen = append(listen, "netns/"+ns+"/tcp/127.0.0.1:8000", "netns/"+ns+"/udp/127.0.0.1:8000")
	}
	cfg := fmt.Sprintf(`{
	admin %s
	layer4 {
		%s {
			@first netns %s
			route @first {
				netns_proxy {l4.netns.network}/127.0.0.1:19077
			}
			route {
				netns_proxy netns/{l4.netns.name}/{l4.netns.network}/127.0.0.1:9000
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), strings.Join(listen, " "), "/var/run/netns/"+nss[0])
	admin.MustLoad(t, cfg, "caddyfile")
	expectAnswer(t, nss[0], "tcp", "127.0.0.1:8000", "special")
	expectAnswer(t, nss[0], "udp", "127.0.0.1:8000", "special")
	for _, ns := range nss[1:] {
		expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "in-"+ns)
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", "in-"+ns)
	}
	if cfg := admin.Config(t); !strings.Contains(cfg, `"netns_proxy"`) || !strings.Contains(cfg, `"netns":["/var/run/netns/`+nss[0]+`"]`) {
		t.Errorf("adapted config: %s", cfg)
	}
}

// With no matcher in front, netns_proxy still fills the {l4.netns.*}
// placeholders: the arrival namespace is looked up when an upstream
// address first reads one.
func TestPlaceholdersWithoutMatcher(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	var listen []string
	for _, ns := range nss {
		startBackend(t, ns, "127.0.0.1:9000", "in-"+ns)
		listen = append(listen, "netns/"+ns+"/tcp/127.0.0.1:8000", "netns/"+ns+"/udp/127.0.0.1:8000")
	}
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	layer4 {
		%s {
			route {
				netns_proxy netns/{l4.netns.name}/{l4.netns.network}/127.0.0.1:9000
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), strings.Join(listen, " ")), "caddyfile")
	for _, ns := range nss {
		expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "in-"+ns)
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", "in-"+ns)
	}
}

// With the first upstream down, every connection fails over to the next
// one (policy first, so the dead one is always tried first).
func TestFailoverWhenAnUpstreamIsDown(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	startBackend(t, nss[2], "127.0.0.1:9000", "second")
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"tcp": proxyServer([]string{"netns/" + nss[0] + "/tcp/127.0.0.1:8000"}, `{"handler":"netns_proxy",
			"load_balancing":{"selection":{"policy":"first"}},
			"upstreams":[{"dial":"netns/`+nss[1]+`/tcp/127.0.0.1:9000"},{"dial":"netns/`+nss[2]+`/tcp/127.0.0.1:9000"}]}`),
	}), "json")
	for range 5 {
		expectAnswer(t, nss[0], "tcp", "127.0.0.1:8000", "second")
	}
	// A namespace that does not exist is a failed connect like any other.
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"tcp": proxyServer([]string{"netns/" + nss[0] + "/tcp/127.0.0.1:8000"}, `{"handler":"netns_proxy",
			"load_balancing":{"selection":{"policy":"first"}},
			"upstreams":[{"dial":"netns/nlt-nosuch/tcp/127.0.0.1:9000"},{"dial":"netns/`+nss[2]+`/tcp/127.0.0.1:9000"}]}`),
	}), "json")
	expectAnswer(t, nss[0], "tcp", "127.0.0.1:8000", "second")
	// All down: the client's connection is closed.
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"tcp": proxyServer([]string{"netns/" + nss[0] + "/tcp/127.0.0.1:8000"}, `{"handler":"netns_proxy",
			"upstreams":[{"dial":"netns/`+nss[1]+`/tcp/127.0.0.1:9000"}]}`),
	}), "json")
	if got, err := ask(nss[0], "tcp", "127.0.0.1:8000", "x"); err == nil {
		t.Errorf("answered %q with every upstream down", got)
	}
}

// Active health checks connect from inside the upstream's namespace: when
// the first upstream's health port closes it is marked down and traffic
// moves to the second although its data port still answers; when the
// health port opens again it is marked up and traffic comes back.
func TestActiveHealthChecksInUpstreamNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	startBackend(t, nss[1], "127.0.0.1:9000", "first")
	startBackend(t, nss[2], "127.0.0.1:9000", "second")
	health := startBackend(t, nss[1], "127.0.0.1:9100", "health")
	startBackend(t, nss[2], "127.0.0.1:9100", "health")
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"tcp": proxyServer([]string{"netns/" + nss[0] + "/tcp/127.0.0.1:8000"}, `{"handler":"netns_proxy",
			"load_balancing":{"selection":{"policy":"first"}},
			"health_checks":{"active":{"port":9100,"interval":100000000,"timeout":500000000}},
			"upstreams":[{"dial":"netns/`+nss[1]+`/tcp/127.0.0.1:9000"},{"dial":"netns/`+nss[2]+`/tcp/127.0.0.1:9000"}]}`),
	}), "json")
	waitAnswer(t, nss[0], "first")
	health.Stop()
	waitAnswer(t, nss[0], "second")
	health = startBackend(t, nss[1], "127.0.0.1:9100", "health")
	waitAnswer(t, nss[0], "first")
	health.Stop()
	waitAnswer(t, nss[0], "second")
}

// waitAnswer waits (up to 10s) until a TCP client in ns gets tag's answer.
func waitAnswer(t *testing.T, ns, tag string) {
	t.Helper()
	var got string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got, err = ask(ns, "tcp", "127.0.0.1:8000", "hc")
		if got == tag+": hc" {
			return
		}
	}
	t.Fatalf("never answered by %s: last %q, %v", tag, got, err)
}

// 1000 connections from ns1 through Caddy to a backend in ns2 stay open
// at once; the process's OS thread count stays within a small constant.
func TestThreadsStayFlatWith1000Connections(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	startBackend(t, nss[1], "127.0.0.1:9000", "b")
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"tcp": proxyServer([]string{"netns/" + nss[0] + "/tcp/127.0.0.1:8000"},
			`{"handler":"netns_proxy","upstreams":[{"dial":"netns/`+nss[1]+`/tcp/127.0.0.1:9000"}]}`),
	}), "json")
	expectAnswer(t, nss[0], "tcp", "127.0.0.1:8000", "b")
	before := nstest.Threads(t)
	conns := make([]net.Conn, 0, 1000)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 1000 {
		c, err := dialIn(nss[0], "tcp", "127.0.0.1:8000")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if got, err := askOn(c, "hi"); got != "b: hi" {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
	during := nstest.Threads(t)
	// Every connection still works.
	for i, c := range conns {
		if i%50 == 0 {
			if got, err := askOn(c, "again"); got != "b: again" {
				t.Fatalf("connection %d: %q, %v", i, got, err)
			}
		}
	}
	t.Logf("OS threads: %d before, %d with 1000 proxied connections open", before, during)
	if during > before+8 {
		t.Errorf("threads grew from %d to %d", before, during)
	}
}

// A matcher that reads the first bytes (regexp) runs before netns_proxy:
// those bytes reach the upstream first, then the rest is spliced.
func TestMatchedBytesReachTheUpstream(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	startBackend(t, nss[1], "127.0.0.1:9000", "ns2")
	admin.MustLoad(t, fmt.Sprintf(`{%s,"apps":{"layer4":{"servers":{"s":{
		"listen":["netns/%s/tcp/127.0.0.1:8000"],
		"routes":[{"match":[{"regexp":{"pattern":"^hello","count":5}}],
			"handle":[{"handler":"netns_proxy","upstreams":[{"dial":"netns/%s/tcp/127.0.0.1:9000"}]}]}]
	}}}}}`, admin.WithAdmin(), nss[0], nss[1]), "json")
	c, err := dialIn(nss[0], "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, line := range []string{"hello world", "second line"} {
		if got, err := askOn(c, line); got != "ns2: "+line {
			t.Fatalf("%q: got %q, %v", line, got, err)
		}
	}
}
