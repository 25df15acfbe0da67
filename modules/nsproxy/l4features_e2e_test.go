package nsproxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// sourceBackend answers each connection on addr in ns with the source
// address it sees, one line.
func sourceBackend(t *testing.T, ns, addr string) {
	t.Helper()
	ln := nstest.Listen(t, ns, "tcp", addr)
	nstest.AcceptEach(t, ln, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write([]byte(c.RemoteAddr().String() + "\n"))
	})
}

// readLine connects in ns to addr and returns the first line it is sent.
func readLine(t *testing.T, ns, addr string) string {
	t.Helper()
	c, err := dialIn(ns, "tcp", addr)
	if err != nil {
		t.Fatalf("connecting in %s to %s: %v", ns, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading from %s in %s: %v", addr, ns, err)
	}
	return strings.TrimSpace(line)
}

// caddy-l4's local_address on an upstream in a namespace: the upstream
// socket is bound, before it connects, to an address that exists only in
// the upstream's namespace, and the backend sees that source (port as
// given, or any). An address of the other family comes first and is
// skipped, as caddy-l4 does; both the JSON and the Caddyfile form load.
func TestLocalAddressInNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	nstest.Run(t, "ip", "-n", back, "addr", "add", "10.213.0.7/32", "dev", "lo")
	sourceBackend(t, back, "127.0.0.1:9000")

	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"any": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8000"}, `{"handler": "netns_proxy",
			"upstreams": [{"dial": ["netns/`+back+`/tcp/127.0.0.1:9000"], "local_address": ["2001:db8::7", "10.213.0.7"]}]}`),
		"port": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8001"}, `{"handler": "netns_proxy",
			"upstreams": [{"dial": ["netns/`+back+`/tcp/127.0.0.1:9000"], "local_address": ["10.213.0.7:45123"]}]}`),
	}), "json")
	nstest.WaitListening(t, client, "127.0.0.1:8000")
	for i := range 3 {
		if got := readLine(t, client, "127.0.0.1:8000"); !strings.HasPrefix(got, "10.213.0.7:") {
			t.Fatalf("connection %d: backend saw source %q, want 10.213.0.7:<port>", i, got)
		}
	}
	if got := readLine(t, client, "127.0.0.1:8001"); got != "10.213.0.7:45123" {
		t.Fatalf("backend saw source %q, want 10.213.0.7:45123", got)
	}

	// caddy-l4's Caddyfile syntax, the proxy directive renamed.
	admin.MustLoad(t, `{
	admin `+strings.TrimPrefix(admin.URL, "http://")+`
	layer4 {
		netns/`+client+`/tcp/127.0.0.1:8002 {
			route {
				netns_proxy {
					upstream {
						dial netns/`+back+`/tcp/127.0.0.1:9000
						local_addr 10.213.0.7
					}
				}
			}
		}
	}
}`, "caddyfile")
	nstest.WaitListening(t, client, "127.0.0.1:8002")
	if got := readLine(t, client, "127.0.0.1:8002"); !strings.HasPrefix(got, "10.213.0.7:") {
		t.Fatalf("Caddyfile form: backend saw source %q, want 10.213.0.7:<port>", got)
	}
}

// echoLines answers each line of every connection on addr in ns with
// "<tag>: <line>" until the test ends; connections stay open however the
// listener fares.
func echoLines(t *testing.T, ns, addr, tag string) net.Listener {
	t.Helper()
	ln := nstest.Listen(t, ns, "tcp", addr)
	nstest.AcceptEach(t, ln, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(tag + ": " + line)); err != nil {
				return
			}
		}
	})
	return ln
}

// caddy-l4's close_if_unhealthy, in its Caddyfile syntax: when the active
// check marks the upstream (in a namespace) down, the open connection
// through the handler that sets it is closed; one through a handler
// without it, to the same upstream, stays open and keeps working.
func TestCloseIfUnhealthyInNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	echoLines(t, back, "127.0.0.1:9000", "data")
	health := echoLines(t, back, "127.0.0.1:9001", "health")

	admin.MustLoad(t, `{
	admin `+strings.TrimPrefix(admin.URL, "http://")+`
	layer4 {
		netns/`+client+`/tcp/127.0.0.1:8000 {
			route {
				netns_proxy netns/`+back+`/tcp/127.0.0.1:9000 {
					health_interval 1s
					health_port 9001
					close_if_unhealthy
				}
			}
		}
		netns/`+client+`/tcp/127.0.0.1:8001 {
			route {
				netns_proxy netns/`+back+`/tcp/127.0.0.1:9000 {
					health_interval 1s
					health_port 9001
				}
			}
		}
	}
}`, "caddyfile")
	nstest.WaitListening(t, client, "127.0.0.1:8000")
	nstest.WaitListening(t, client, "127.0.0.1:8001")
	closing, err := dialIn(client, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer closing.Close()
	keeping, err := dialIn(client, "tcp", "127.0.0.1:8001")
	if err != nil {
		t.Fatal(err)
	}
	defer keeping.Close()
	for _, c := range []net.Conn{closing, keeping} {
		if got, err := askOn(c, "before"); got != "data: before" {
			t.Fatalf("before the upstream is down: %q, %v", got, err)
		}
	}

	health.Close() // the next check fails: the upstream is marked down
	_ = closing.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := closing.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection through the handler with close_if_unhealthy still open 30s after the health port closed (read %d bytes, %v)", n, err)
	}
	if got, err := askOn(keeping, "after"); got != "data: after" {
		t.Fatalf("connection through the handler without close_if_unhealthy: %q, %v; want it open", got, err)
	}
}

// recorder takes connections on addr in ns, answers nothing, and sends
// everything each one sent, once it ends, to got.
func recorder(t *testing.T, ns, addr string) <-chan string {
	t.Helper()
	got := make(chan string, 16)
	ln := nstest.Listen(t, ns, "tcp", addr)
	nstest.AcceptEach(t, ln, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	return got
}

// caddy-l4's dial with several addresses, each in its own namespace: every
// address is connected to, every one receives the client's bytes, and
// what each sends back reaches the client (caddy-l4 copies every
// upstream's replies to the client). In the Caddyfile form (upstream with
// two addresses) and the JSON form (dial array). When one address cannot
// be connected to, the upstream fails: the client gets no answer.
func TestDialSeveralAddressesInNamespaces(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	client, one, two := nss[0], nss[1], nss[2]
	echoLines(t, one, "127.0.0.1:9000", "one")
	echoLines(t, two, "127.0.0.1:9000", "two")
	sink := recorder(t, two, "127.0.0.1:9001")

	admin.MustLoad(t, `{
	admin `+strings.TrimPrefix(admin.URL, "http://")+`
	layer4 {
		netns/`+client+`/tcp/127.0.0.1:8000 {
			route {
				netns_proxy {
					upstream netns/`+one+`/tcp/127.0.0.1:9000 netns/`+two+`/tcp/127.0.0.1:9000
				}
			}
		}
	}
}`, "caddyfile")
	nstest.WaitListening(t, client, "127.0.0.1:8000")
	c, err := dialIn(client, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"a", "b"} {
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for range 2 {
			s, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("line %q: answers so far %v: %v", line, got, err)
			}
			got[strings.TrimSpace(s)] = true
		}
		if !got["one: "+line] || !got["two: "+line] {
			t.Fatalf("line %q: answers %v; want one from each address", line, got)
		}
	}

	// JSON, the second address a sink that records what it got.
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"mirror": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8001"}, `{"handler": "netns_proxy",
			"upstreams": [{"dial": ["netns/`+one+`/tcp/127.0.0.1:9000", "netns/`+two+`/tcp/127.0.0.1:9001"]}]}`),
		"broken": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8002"}, `{"handler": "netns_proxy",
			"upstreams": [{"dial": ["netns/`+one+`/tcp/127.0.0.1:9000", "netns/`+two+`/tcp/127.0.0.1:9009"]}]}`),
	}), "json")
	nstest.WaitListening(t, client, "127.0.0.1:8001")
	got, err := ask(client, "tcp", "127.0.0.1:8001", "mirrored")
	if got != "one: mirrored" {
		t.Fatalf("first address's answer: %q, %v", got, err)
	}
	// WaitListening's probe connection reaches the sink too, empty.
	for deadline := time.After(30 * time.Second); ; {
		select {
		case s := <-sink:
			if s == "" {
				continue
			}
			if s != "mirrored\n" {
				t.Fatalf("second address received %q, want %q", s, "mirrored\n")
			}
		case <-deadline:
			t.Fatal("second address's connection did not end within 30s of the client's")
		}
		break
	}
	nstest.WaitListening(t, client, "127.0.0.1:8002")
	if got, err := ask(client, "tcp", "127.0.0.1:8002", "x"); err == nil {
		t.Fatalf("upstream with an address that refuses: answered %q; want the connection failed", got)
	}
}

// Active health checks check every address of a dial with several, and
// the upstream is available only while all are up (as caddy-l4): with the
// health port open in the first address's namespace only, connections
// soon fail, although both data ports accept.
func TestDialSeveralAddressesHealth(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	client, one, two := nss[0], nss[1], nss[2]
	echoLines(t, one, "127.0.0.1:9000", "one")
	echoLines(t, one, "127.0.0.1:9001", "health")
	echoLines(t, two, "127.0.0.1:9000", "two")

	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"mirror": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8000"}, `{"handler": "netns_proxy",
			"health_checks": {"active": {"port": 9001, "interval": "1s", "timeout": "2s"}},
			"upstreams": [{"dial": ["netns/`+one+`/tcp/127.0.0.1:9000", "netns/`+two+`/tcp/127.0.0.1:9000"]}]}`),
	}), "json")
	nstest.WaitListening(t, client, "127.0.0.1:8000")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got, err := ask(client, "tcp", "127.0.0.1:8000", "x")
		if err != nil {
			return // marked down: no upstream available
		}
		if time.Now().After(deadline) {
			t.Fatalf("still answered (%q) 30s after the second address's health port was found closed; want the upstream down", got)
		}
	}
}

// A dial with several UDP addresses, each in its own namespace: each
// datagram of the client reaches both, and both replies reach the client,
// as with caddy-l4.
func TestDialSeveralAddressesUDP(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	client, one, two := nss[0], nss[1], nss[2]
	startBackend(t, one, "127.0.0.1:9100", "one")
	startBackend(t, two, "127.0.0.1:9100", "two")
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"mirror": proxyServer([]string{"netns/" + client + "/udp/127.0.0.1:8100"}, `{"handler": "netns_proxy",
			"upstreams": [{"dial": ["netns/`+one+`/udp/127.0.0.1:9100", "netns/`+two+`/udp/127.0.0.1:9100"]}]}`),
	}), "json")
	// The listener is up once a datagram is answered.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := ask(client, "udp", "127.0.0.1:8100", "probe"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("UDP listener never answered")
		}
	}
	c, err := dialIn(client, "udp", "127.0.0.1:8100")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, line := range []string{"a", "b"} {
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		buf := make([]byte, 1500)
		for len(got) < 2 {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("datagram %q: replies so far %v: %v", line, got, err)
			}
			got[strings.TrimSpace(string(buf[:n]))] = true
		}
		if !got["one: "+line] || !got["two: "+line] {
			t.Fatalf("datagram %q: replies %v; want one from each address", line, got)
		}
	}
}

// 50 connections through an upstream with two addresses: each line
// reaches the second address exactly once (none lost, none duplicated,
// none in another connection's), the client gets the first's answer, and
// afterwards goroutines and file descriptors are back where they were.
func TestDialSeveralAddressesCounts(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	client, one, two := nss[0], nss[1], nss[2]
	echoLines(t, one, "127.0.0.1:9000", "one")
	sink := recorder(t, two, "127.0.0.1:9001")
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"mirror": proxyServer([]string{"netns/" + client + "/tcp/127.0.0.1:8001"}, `{"handler": "netns_proxy",
			"upstreams": [{"dial": ["netns/`+one+`/tcp/127.0.0.1:9000", "netns/`+two+`/tcp/127.0.0.1:9001"]}]}`),
	}), "json")
	nstest.WaitListening(t, client, "127.0.0.1:8001")
	time.Sleep(500 * time.Millisecond)
	for len(sink) > 0 { // the probe's empty record
		<-sink
	}
	fds0, gor0 := openFDs(t), runtime.NumGoroutine()

	const n = 50
	wrong := 0
	for i := range n {
		line := fmt.Sprint("line ", i)
		if got, err := ask(client, "tcp", "127.0.0.1:8001", line); got != "one: "+line {
			wrong++
			t.Logf("connection %d: %q, %v", i, got, err)
		}
	}
	seen := map[string]int{}
	for deadline := time.After(30 * time.Second); len(seen) < n; {
		select {
		case s := <-sink:
			seen[s]++
		case <-deadline:
			t.Fatalf("the second address got %d of %d connections' bytes within 30s", len(seen), n)
		}
	}
	lost, dup := 0, 0
	for i := range n {
		switch seen[fmt.Sprintf("line %d\n", i)] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	nstest.Summary(t, "dial with two addresses", "connections", n, wrong+lost+dup)
	if wrong+lost+dup > 0 || len(seen) != n {
		t.Fatalf("%d wrong answers, %d lines lost and %d duplicated at the second address, records %v", wrong, lost, dup, seen)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fds, gor := openFDs(t), runtime.NumGoroutine()
		if fds <= fds0 && gor <= gor0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d connections: %d file descriptors (before %d), %d goroutines (before %d)", n, fds, fds0, gor, gor0)
		}
	}
}
