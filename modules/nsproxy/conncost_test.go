package nsproxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsproxy"
)

// The cost of one proxied connection and of one proxied datagram, counted
// rather than timed: allocations here, system calls in syscalls_test.go.
//
// A client in namespace A connects to a plain netns listener
// (netns/A/tcp/127.0.0.1:8000, .../udp/...) whose netns_proxy route dials
// a lean echo backend inside namespace B. The same client also talks to
// the backend directly (case "direct"): client and backend live in this
// process too, so the proxy's own share is proxied minus direct.

// costMsg is the request and the response of one transaction.
const costMsg = 64

// costRig is the setup the cost measurements share.
type costRig struct {
	clientNS, backendNS *nsenter.Namespace
	proxy, direct       string // addresses: the listener in A, the backend in B
}

// startCostRig makes the namespaces, the backend and, if admin is not nil,
// loads the proxy config into that Caddy.
func startCostRig(tb testing.TB, admin *e2e.Admin) *costRig {
	tb.Helper()
	nss := nstest.Add(tb, 2)
	r := &costRig{clientNS: openNS(tb, nss[0]), backendNS: openNS(tb, nss[1]),
		proxy: "127.0.0.1:8000", direct: "127.0.0.1:9000"}
	startEcho(tb, r.backendNS, r.direct)
	if admin != nil {
		admin.MustLoad(tb, costConfig(admin.WithAdmin(), nss[0], nss[1]), "json")
	}
	return r
}

// costConfig is the proxy config: one TCP and one UDP server, each with
// one netns_proxy route into B.
func costConfig(admin, a, b string) string { return costConfigIdle(admin, a, b, "") }

// costConfigIdle is costConfig with the UDP server's idle_timeout (how
// long a flow lives after its last datagram) set, unless empty, and the
// same udp_quarantine.
func costConfigIdle(admin, a, b, udpIdle string) string {
	quarantine := ""
	if udpIdle != "" {
		// An ended flow's upstream socket is held for udp_quarantine
		// (default 10s); keep it shorter than the wait before a
		// measurement, so held sockets do not count as growth.
		quarantine = `,"udp_quarantine":"` + udpIdle + `"`
	}
	udp := proxyServer([]string{"netns/" + a + "/udp/127.0.0.1:8000"},
		`{"handler":"netns_proxy"`+quarantine+`,"upstreams":[{"dial":"netns/`+b+`/udp/127.0.0.1:9000"}]}`)
	if udpIdle != "" {
		udp = `{"idle_timeout":"` + udpIdle + `",` + udp[1:]
	}
	return fmt.Sprintf(`{%s,"logging":{"logs":{"default":{"level":"WARN"}}},"apps":{"layer4":{"servers":{
		"tcp":%s,"udp":%s}}}}`, admin,
		proxyServer([]string{"netns/" + a + "/tcp/127.0.0.1:8000"},
			`{"handler":"netns_proxy","upstreams":[{"dial":"netns/`+b+`/tcp/127.0.0.1:9000"}]}`),
		udp)
}

// startEcho serves, inside n, TCP connections (echo what arrives until
// EOF) and UDP datagrams (echo each), with one buffer per connection.
func startEcho(tb testing.TB, n *nsenter.Namespace, addr string) {
	tb.Helper()
	ln, err := nsenter.Listen(n, "tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	pc, err := nsenter.ListenPacket(n, "udp", addr)
	if err != nil {
		ln.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var buf [costMsg]byte
				for {
					k, err := c.Read(buf[:])
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:k]); err != nil {
						return
					}
				}
			}()
		}
	}()
	go func() {
		u := pc.(*net.UDPConn)
		var buf [2048]byte
		for {
			k, from, err := u.ReadFromUDPAddrPort(buf[:])
			if err != nil {
				return
			}
			u.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
}

// costClient is the client side, kept lean so that it adds little to
// what is counted: one request buffer, one response buffer.
type costClient struct {
	ns       *nsenter.Namespace
	req, rsp [costMsg]byte
}

// transact opens a TCP connection to addr from inside the client's
// namespace, sends one request, reads the whole response and closes.
func (c *costClient) transact(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := nsenter.Dial(ctx, c.ns, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(c.req[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(conn, c.rsp[:]); err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	return nil
}

// roundTrip sends one datagram on u and reads the answer.
func (c *costClient) roundTrip(u net.Conn) error {
	u.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.Write(c.req[:]); err != nil {
		return err
	}
	k, err := u.Read(c.rsp[:])
	if err != nil {
		return err
	}
	if k != costMsg {
		return fmt.Errorf("answer of %d bytes, want %d", k, costMsg)
	}
	return nil
}

// flow opens a UDP socket in the client's namespace connected to addr.
func (c *costClient) flow(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	u, err := nsenter.Dial(context.Background(), c.ns, "udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { u.Close() })
	// The first datagram creates the proxy's flow and upstream socket.
	if err := c.roundTrip(u); err != nil {
		tb.Fatal(err)
	}
	return u
}

// BenchmarkProxyConnection is one TCP transaction (connect, 64 bytes each
// way, close) through netns_proxy ("proxied") and straight to the backend
// ("direct"), both from a client in namespace A, the backend in B. The
// proxy's own allocations per connection are proxied minus direct.
//
//	go test -run '^$' -bench 'ProxyConnection|ProxyDatagram' -benchmem -benchtime 2000x ./modules/nsproxy/
func BenchmarkProxyConnection(b *testing.B) {
	nstest.Require(b)
	r := startCostRig(b, e2e.Start(b))
	for _, cs := range []struct{ name, addr string }{{"proxied", r.proxy}, {"direct", r.direct}} {
		b.Run(cs.name, func(b *testing.B) {
			c := &costClient{ns: r.clientNS}
			if cs.name == "direct" {
				c.ns = r.backendNS
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.transact(cs.addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProxyDatagram is one UDP round trip (64 bytes each way) on an
// established flow through netns_proxy ("proxied") and straight to the
// backend ("direct").
func BenchmarkProxyDatagram(b *testing.B) {
	nstest.Require(b)
	r := startCostRig(b, e2e.Start(b))
	for _, cs := range []struct{ name, addr string }{{"proxied", r.proxy}, {"direct", r.direct}} {
		b.Run(cs.name, func(b *testing.B) {
			c := &costClient{ns: r.clientNS}
			if cs.name == "direct" {
				c.ns = r.backendNS
			}
			u := c.flow(b, cs.addr)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.roundTrip(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// proxyAllocs returns the allocations per connection and per datagram
// that the proxy adds, averaged over runs: proxied minus direct, measured
// with testing.AllocsPerRun (which counts every goroutine of the process,
// so Caddy's too).
func proxyAllocs(t *testing.T, r *costRig, runs int) (perConn, perDatagram float64) {
	t.Helper()
	measure := func(f func() error) float64 {
		var err error
		n := testing.AllocsPerRun(runs, func() {
			if e := f(); e != nil && err == nil {
				err = e
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	proxied := &costClient{ns: r.clientNS}
	direct := &costClient{ns: r.backendNS}
	conn := measure(func() error { return proxied.transact(r.proxy) }) -
		measure(func() error { return direct.transact(r.direct) })
	up, dp := proxied.flow(t, r.proxy), direct.flow(t, r.direct)
	dgram := measure(func() error { return proxied.roundTrip(up) }) -
		measure(func() error { return direct.roundTrip(dp) })
	return conn, dgram
}

// retained is what the process keeps between rounds of connections.
type retained struct {
	goroutines, heapObjects, fds, states, threads int
	heapBytes                                     uint64
}

func measureRetained(t *testing.T) retained {
	t.Helper()
	// Handlers finish just after their client has closed, UDP flows
	// after their idle timeout: give them a moment, then collect twice
	// (finalizers, sync.Pool victims).
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	return retained{goroutines: runtime.NumGoroutine(), heapObjects: int(ms.HeapObjects),
		heapBytes: ms.HeapAlloc, fds: len(fds), states: nsproxy.StatesLen(), threads: nsenter.Threads()}
}

// Nothing accumulates per connection: after rounds of connections and
// datagram flows through one running Caddy, the goroutines, descriptors,
// upstream states and the live heap stay where the first round left them
// (the issue saw the CPU per connection rise over back-to-back rounds).
func TestNoGrowthPerConnection(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	r := startCostRig(t, nil)
	// UDP flows end 100ms after their last datagram, so that a round's
	// flows are gone before the next measurement.
	admin.MustLoad(t, costConfigIdle(admin.WithAdmin(), r.clientNS.Spec, r.backendNS.Spec, "100ms"), "json")
	const rounds, conns, flows = 5, 400, 20
	c := &costClient{ns: r.clientNS}
	var seen []retained
	for round := range rounds {
		for range conns {
			if err := c.transact(r.proxy); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for range flows { // new flows each round: a new upstream socket each
			u, err := nsenter.Dial(context.Background(), c.ns, "udp", r.proxy)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.roundTrip(u); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			u.Close()
		}
		seen = append(seen, measureRetained(t))
		t.Logf("round %d: %+v; TIME-WAIT sockets (kernel): client's namespace %d, backend's %d", round, seen[round],
			timeWait(r.clientNS.Spec), timeWait(r.backendNS.Spec))
	}
	first, last := seen[1], seen[rounds-1] // round 0 warms pools and threads up
	perConn := func(a, b int) float64 { return float64(b-a) / float64((rounds-2)*conns) }
	if d := last.goroutines - first.goroutines; d > 5 {
		t.Errorf("goroutines grew by %d over %d connections and %d flows", d, (rounds-2)*conns, (rounds-2)*flows)
	}
	if d := last.fds - first.fds; d > 2 {
		t.Errorf("descriptors grew by %d over %d connections and %d flows", d, (rounds-2)*conns, (rounds-2)*flows)
	}
	if d := last.threads - first.threads; d > 2 {
		t.Errorf("threads grew by %d over %d connections and %d flows", d, (rounds-2)*conns, (rounds-2)*flows)
	}
	if last.states != first.states {
		t.Errorf("upstream states: %d after round 1, %d after round %d", first.states, last.states, rounds-1)
	}
	if g := perConn(first.heapObjects, last.heapObjects); g > 0.5 {
		t.Errorf("live heap grew by %.2f objects per connection (%d -> %d)", g, first.heapObjects, last.heapObjects)
	}
}

// timeWait counts the TCP sockets in TIME-WAIT in namespace ns, -1 if ss
// fails.
func timeWait(ns string) int {
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-Htan", "state", "time-wait").Output()
	if err != nil {
		return -1
	}
	return strings.Count(string(out), "\n")
}

// Allocation ceilings of one proxied TCP connection (connect, 64 bytes
// each way, close) and one proxied UDP datagram round trip, measured as
// proxied minus direct (see proxyAllocs); caddy-l4's own share included
// (about 40 per connection and all 8 per datagram at caddy-l4 v0.1.2).
// Measured: 92 and 8 (was 108 and 8 before issue 16); the ceilings leave
// a small margin for the runtime's noise.
const (
	maxAllocsPerConnection = 98
	maxAllocsPerDatagram   = 9
)

// The allocations per proxied connection and per datagram stay at or
// below what they were measured at (counted, not timed).
func TestAllocsPerProxiedConnection(t *testing.T) {
	nstest.Require(t)
	r := startCostRig(t, e2e.Start(t))
	c := &costClient{ns: r.clientNS}
	for range 50 { // warm up pools, shared namespace handles, threads
		if err := c.transact(r.proxy); err != nil {
			t.Fatal(err)
		}
	}
	conn, dgram := proxyAllocs(t, r, 500)
	t.Logf("conncost: allocations of the proxy: %.1f per connection (ceiling %d), %.1f per datagram (ceiling %d)",
		conn, maxAllocsPerConnection, dgram, maxAllocsPerDatagram)
	if conn > maxAllocsPerConnection {
		t.Errorf("%.1f allocations per proxied connection, more than %d", conn, maxAllocsPerConnection)
	}
	if dgram > maxAllocsPerDatagram {
		t.Errorf("%.1f allocations per proxied datagram, more than %d", dgram, maxAllocsPerDatagram)
	}
}
