package nsnetwork_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// envInt reads a size from the environment, for the long soak variants:
// RELIABILITY_NAMESPACES, RELIABILITY_RELOADS, ...
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Clients in many namespaces open, use and close connections continuously
// while the config is reloaded many times through the admin API: no failed
// connect, no reset, no lost byte. Many UDP flows per namespace, on plain
// listeners (in the first RELIABILITY_UDP_NAMESPACES namespaces) and on a
// set, keep getting every answer across the reloads, each answer to the
// flow that asked, once.
func TestZeroDropReloads(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, envInt("RELIABILITY_NAMESPACES", 50))
	reloads := envInt("RELIABILITY_RELOADS", 100)
	flows := envInt("RELIABILITY_UDP_FLOWS", 20)
	prefix := setPrefix()
	var members []string
	for i := range envInt("RELIABILITY_SET_NAMESPACES", 5) {
		members = append(members, fmt.Sprintf("%s%d", prefix, i))
	}
	addNamed(t, members...)
	b := startBackend(t, "b")
	routes := map[string]route{}
	for _, ns := range nss {
		nsRoutes(routes, ns, "127.0.0.1:8000", b)
	}
	routes["set-tcp"] = route{[]string{"netns/" + prefix + "*/tcp/127.0.0.1:8000"}, fmt.Sprintf("127.0.0.1:%d", b.port)}
	routes["set-udp"] = route{[]string{"netns/" + prefix + "*/udp/127.0.0.1:8000"}, fmt.Sprintf("udp/127.0.0.1:%d", b.port)}
	// Every load is forced (Cache-Control: must-revalidate), so each one
	// provisions and starts a fresh config before stopping the old one.
	// UDP flows idle out after 3s; a closed handle's reader lingers 6s.
	// (caddy-l4 counts only the client's datagrams as activity: a flow
	// whose reply is slower than idle_timeout, as happens at 1s with a
	// thousand flows on two loaded cores, ends and its reply is dropped
	// with its upstream socket, which is not what this test measures.)
	const idle = 3 * time.Second
	defer func(d time.Duration) { nsnetwork.CloseLinger = d }(nsnetwork.CloseLinger)
	nsnetwork.CloseLinger = 2 * idle
	cfg := layer4ConfigIdle(admin, routes, idle.String())
	admin.MustLoad(t, cfg, "json")
	settle()
	fds0, gor0 := fds(t), runtime.NumGoroutine()

	var (
		stop             atomic.Bool
		conns, tcpFail   atomic.Int64
		plainUDP, setUDP udpCounts
		firstMu          sync.Mutex
		firstErr         error
		wg               sync.WaitGroup
	)
	fail := func(err error) { // the first failure, of whatever type
		firstMu.Lock()
		defer firstMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	done := func() bool { return stop.Load() || time.Now().After(deadline) }
	for _, ns := range append(slices.Clone(nss), members...) {
		wg.Go(func() { // TCP: connect, ask, close, again
			for i := 0; !done(); i++ {
				line := fmt.Sprintf("%s #%d %s", ns, i, strings.Repeat("x", 1+i%700))
				got, err := ask(ns, "tcp", "127.0.0.1:8000", line)
				conns.Add(1)
				if err != nil || got != "b: "+line {
					tcpFail.Add(1)
					fail(fmt.Errorf("tcp in %s: got %.40q, %v", ns, got, err))
				}
			}
		})
	}
	udpNss := nss[:min(len(nss), envInt("RELIABILITY_UDP_NAMESPACES", 10))]
	for _, ns := range udpNss {
		runUDPFlows(&wg, ns, "127.0.0.1:8000", "b", flows, 10*time.Millisecond, done, &plainUDP, fail)
	}
	for _, ns := range members {
		runUDPFlows(&wg, ns, "127.0.0.1:8000", "b", flows, 10*time.Millisecond, done, &setUDP, fail)
	}
	loadFail := 0
	// caddy-l4 v0.1.2 keys UDP flows per config: every reload starts a new
	// flow, and a new upstream socket, for each live client flow, and the
	// old one ends only after idle. Reloads at full speed (25 a second)
	// made 300 flows hold ~30,000 sockets and ran the process out of
	// descriptors; at most 25 reloads per idle period keep it below 10,000.
	pace := time.NewTicker(idle / 25)
	defer pace.Stop()
	for range reloads {
		<-pace.C
		if err := admin.Load(cfg, "json"); err != nil {
			if loadFail == 0 {
				t.Logf("first failed load: %v", err)
			}
			loadFail++
			fail(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	nstest.Summary(t, "zero-drop reloads", fmt.Sprintf("%d reloads, %d namespaces and a set of %d, tcp connections", reloads, len(nss), len(members)), int(conns.Load()), int(tcpFail.Load()))
	nstest.Summary(t, "zero-drop reloads", fmt.Sprintf("udp datagrams, %d flows in each of %d namespaces (%s)", flows, len(udpNss), &plainUDP), int(plainUDP.sent.Load()), int(plainUDP.failed()))
	nstest.Summary(t, "zero-drop reloads", fmt.Sprintf("udp datagrams, %d flows in each of %d set members (%s)", flows, len(members), &setUDP), int(setUDP.sent.Load()), int(setUDP.failed()))
	if tcpFail.Load()+plainUDP.failed()+setUDP.failed() > 0 || loadFail > 0 {
		t.Fatalf("%d tcp failures; udp on listeners: %s; on the set: %s; %d failed loads; first: %v",
			tcpFail.Load(), &plainUDP, &setUDP, loadFail, firstErr)
	}

	// Every UDP flow, including those open across a reload, ends after its
	// idle timeout and leaves nothing behind.
	time.Sleep(idle + nsnetwork.CloseLinger + time.Second)
	settle()
	fds1, gor1 := fds(t), runtime.NumGoroutine()
	nstest.Summary(t, "udp flows idle out after reloads", fmt.Sprintf("goroutines %d -> %d, fds %d -> %d, client flows", gor0, gor1, fds0, fds1), (len(udpNss)+len(members))*flows, max(0, gor1-gor0-10))
	// Each UDP socket may have gained one descriptor for replies sent
	// through handles closed by a reload (the pool's writer).
	if gor1 > gor0+10 || fds1 > fds0+len(nss)+5 {
		t.Errorf("after the flows idled out: goroutines %d -> %d, fds %d -> %d", gor0, gor1, fds0, fds1)
	}
}

// After many reloads and many connections, file descriptors, goroutines and
// OS threads are back where they started, and no namespace stays pinned by a
// socket the config no longer uses.
func TestNoLeaksAfterReloadsAndConnections(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 10)
	b := startBackend(t, "b")
	routes := map[string]route{}
	for _, ns := range nss {
		nsRoutes(routes, ns, "127.0.0.1:8000", b)
	}
	full := layer4Config(admin, routes)
	empty := layer4Config(admin, nil)
	admin.MustLoad(t, empty, "json")
	// Warm up what is created once (Caddy's admin server, pools, timers).
	admin.MustLoad(t, full, "json")
	expectAnswer(t, nss[0], "tcp", "127.0.0.1:8000", "b")
	admin.MustLoad(t, empty, "json")
	settle()
	fds0, gor0, thr0 := fds(t), runtime.NumGoroutine(), nstest.Threads(t)

	reloads := envInt("RELIABILITY_LEAK_RELOADS", 1000)
	for i := range reloads {
		if i%2 == 0 {
			admin.MustLoad(t, full, "json")
		} else {
			admin.MustLoad(t, empty, "json")
		}
	}
	admin.MustLoad(t, full, "json")
	total := envInt("RELIABILITY_LEAK_CONNECTIONS", 10000)
	var wg sync.WaitGroup
	var failed atomic.Int64
	per := total / len(nss)
	for _, ns := range nss {
		wg.Go(func() {
			for i := range per {
				if got, err := ask(ns, "tcp", "127.0.0.1:8000", strconv.Itoa(i)); err != nil || got != "b: "+strconv.Itoa(i) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	admin.MustLoad(t, empty, "json")
	settle()
	// Idle threads are shed half a second after traffic stops; on a loaded
	// machine that can take longer: wait for it, boundedly.
	thr1 := nstest.Threads(t)
	for deadline := time.Now().Add(15 * time.Second); thr1 > thr0+4 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		thr1 = nstest.Threads(t)
	}
	fds1, gor1 := fds(t), runtime.NumGoroutine()
	nstest.Summary(t, "no leaks", fmt.Sprintf("%d reloads then connections", reloads), per*len(nss), int(failed.Load()))
	t.Logf("fds %d -> %d, goroutines %d -> %d, threads %d -> %d", fds0, fds1, gor0, gor1, thr0, thr1)
	if failed.Load() > 0 {
		t.Errorf("%d connections failed", failed.Load())
	}
	if fds1 > fds0+2 || gor1 > gor0+5 || thr1 > thr0+4 {
		t.Errorf("leak: fds %d -> %d, goroutines %d -> %d, threads %d -> %d", fds0, fds1, gor0, gor1, thr0, thr1)
	}
	for _, s := range nsnetwork.Sockets() {
		for _, ns := range nss {
			if s.Namespace == ns {
				t.Errorf("socket %s %s still open in %s after its config was unloaded", s.Network, s.Address, ns)
			}
		}
	}
}

// A namespace deleted while its listener serves open connections: those
// connections finish normally; a config that still names it fails to load
// and the old config keeps serving; the next config without it releases
// it, so the kernel can free it.
func TestNamespaceDeletedWhileServing(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	gone, kept := nss[0], nss[1]
	b := startBackend(t, "b")
	routes := map[string]route{}
	nsRoutes(routes, gone, "127.0.0.1:8000", b)
	nsRoutes(routes, kept, "127.0.0.1:8000", b)
	admin.MustLoad(t, layer4Config(admin, routes), "json")
	goneID := nstest.ID(t, gone)

	var open []net.Conn
	for range 5 {
		c, err := dialIn(gone, "tcp", "127.0.0.1:8000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	nstest.Del(gone) // the name goes; the sockets keep the namespace alive

	finished := 0
	for i, c := range open {
		if got, err := askOn(c, fmt.Sprintf("after delete %d", i)); err == nil && got == fmt.Sprintf("b: after delete %d", i) {
			finished++
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		if _, err := bufio.NewReader(c).ReadString('\n'); !errors.Is(err, io.EOF) {
			t.Errorf("connection %d did not end cleanly: %v", i, err)
		}
	}
	nstest.Summary(t, "namespace deleted while serving", "open connections finished", len(open), len(open)-finished)

	err := admin.Load(layer4Config(admin, routes), "json")
	if err == nil || !strings.Contains(err.Error(), gone) {
		t.Fatalf("config naming the deleted namespace: %v", err)
	}
	expectAnswer(t, kept, "tcp", "127.0.0.1:8000", "b")

	routes = map[string]route{}
	nsRoutes(routes, kept, "127.0.0.1:8000", b)
	admin.MustLoad(t, layer4Config(admin, routes), "json")
	for _, s := range nsnetwork.Sockets() {
		if s.NamespaceID == goneID {
			t.Errorf("socket %s %s still pins the deleted namespace", s.Network, s.Address)
		}
	}
	expectAnswer(t, kept, "udp", "127.0.0.1:8000", "b")
}

func settle() {
	for range 20 {
		runtime.GC()
		time.Sleep(25 * time.Millisecond)
	}
}

func fds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// udpCounts counts the datagrams of tagged UDP flows (runUDPFlows).
type udpCounts struct {
	sent, lost, duplicated, misdirected atomic.Int64
}

func (c *udpCounts) failed() int64 { return c.lost.Load() + c.duplicated.Load() + c.misdirected.Load() }

func (c *udpCounts) String() string {
	return fmt.Sprintf("lost %d, duplicated %d, misdirected %d", c.lost.Load(), c.duplicated.Load(), c.misdirected.Load())
}

// runUDPFlows starts flows concurrent UDP flows from inside ns to addr,
// each on its own socket, that run until done reports true. Each sends
// "<ns> flow <id> #<seq>" and waits up to 2 s for the backend's
// "<tag>: <line>" before sending the next. Every reply must come back to
// the flow that sent the request, once: a reply naming another flow (or
// namespace) is misdirected, a second reply to a request is duplicated,
// and a request never answered (replies are collected for half a second
// after the last request) is lost.
func runUDPFlows(wg *sync.WaitGroup, ns, addr, tag string, flows int, pace time.Duration, done func() bool, c *udpCounts, fail func(error)) {
	for id := range flows {
		wg.Go(func() {
			conn, err := dialIn(ns, "udp", addr)
			if err != nil {
				c.lost.Add(1)
				fail(fmt.Errorf("udp flow %d in %s: %w", id, ns, err))
				return
			}
			defer conn.Close()
			mine := fmt.Sprintf("%s: %s flow %d #", tag, ns, id)
			got := map[int]bool{}
			buf := make([]byte, 2048)
			// read takes replies until one answers seq (or, with seq
			// -1, until the deadline).
			read := func(seq int, deadline time.Time) {
				conn.SetReadDeadline(deadline)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					reply := strings.TrimSpace(string(buf[:n]))
					s, ok := strings.CutPrefix(reply, mine)
					k, err := strconv.Atoi(s)
					switch {
					case !ok || err != nil:
						c.misdirected.Add(1)
						fail(fmt.Errorf("udp flow %d in %s: got %q, not a reply to this flow", id, ns, reply))
					case got[k]:
						c.duplicated.Add(1)
						fail(fmt.Errorf("udp flow %d in %s: got %q twice", id, ns, reply))
					default:
						got[k] = true
					}
					if ok && k == seq {
						return
					}
				}
			}
			sent := 0
			for seq := 0; !done(); seq++ {
				line := fmt.Sprintf("%s flow %d #%d\n", ns, id, seq)
				sent++
				c.sent.Add(1)
				if _, err := conn.Write([]byte(line)); err != nil {
					fail(fmt.Errorf("udp flow %d in %s: %w", id, ns, err))
					continue
				}
				read(seq, time.Now().Add(2*time.Second))
				time.Sleep(pace)
			}
			read(-1, time.Now().Add(500*time.Millisecond))
			if lost := sent - len(got); lost > 0 {
				c.lost.Add(int64(lost))
				fail(fmt.Errorf("udp flow %d in %s: %d of %d requests unanswered", id, ns, lost, sent))
			}
		})
	}
}

// A set's UDP flows that are open across many reloads end after their idle
// timeout and leave no goroutine or descriptor behind, and every datagram
// of every flow is answered to that flow, once.
func TestSetUDPReloadsLeaveNothing(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	reloads := envInt("RELIABILITY_SET_RELOADS", 100)
	flows := envInt("RELIABILITY_SET_FLOWS", 50)
	prefix := setPrefix()
	var members []string
	for i := range 5 {
		members = append(members, fmt.Sprintf("%s%d", prefix, i))
	}
	addNamed(t, members...)
	b := startBackend(t, "b")
	const idle = time.Second
	defer func(d time.Duration) { nsnetwork.CloseLinger = d }(nsnetwork.CloseLinger)
	nsnetwork.CloseLinger = 2 * idle
	cfg := layer4ConfigIdle(admin, map[string]route{
		"set-udp": {[]string{"netns/" + prefix + "*/udp/127.0.0.1:8000"}, fmt.Sprintf("udp/127.0.0.1:%d", b.port)},
	}, idle.String())
	admin.MustLoad(t, cfg, "json")
	for _, ns := range members {
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", "b")
	}
	time.Sleep(3*idle + nsnetwork.CloseLinger) // the probes' flows end
	settle()
	fds0, gor0 := fds(t), runtime.NumGoroutine()

	var (
		stop     atomic.Bool
		counts   udpCounts
		firstMu  sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) { // the first failure, of whatever type
		firstMu.Lock()
		defer firstMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	done := func() bool { return stop.Load() || time.Now().After(deadline) }
	for i, ns := range members {
		n := flows / len(members)
		if i < flows%len(members) {
			n++
		}
		runUDPFlows(&wg, ns, "127.0.0.1:8000", "b", n, 10*time.Millisecond, done, &counts, fail)
	}
	loadFail := 0
	for range reloads {
		if err := admin.Load(cfg, "json"); err != nil {
			loadFail++
			fail(err)
		}
		time.Sleep(20 * time.Millisecond) // every config gets datagrams
	}
	stop.Store(true)
	wg.Wait()

	time.Sleep(3*idle + nsnetwork.CloseLinger)
	settle()
	fds1, gor1 := fds(t), runtime.NumGoroutine()
	nstest.Summary(t, "set udp reloads", fmt.Sprintf("%d reloads, %d flows over %d namespaces, datagrams (%s)", reloads, flows, len(members), &counts),
		int(counts.sent.Load()), int(counts.failed()))
	nstest.Summary(t, "set udp reloads", fmt.Sprintf("%d reloads, %d live flows; fds %d -> %d; goroutines before %d, after", reloads, flows, fds0, fds1, gor0),
		gor1, max(0, gor1-gor0))
	if counts.failed() > 0 || loadFail > 0 {
		t.Errorf("%s, %d failed loads; first: %v", &counts, loadFail, firstErr)
	}
	if gor1 > gor0+3 || fds1 > fds0+3 {
		t.Errorf("after the flows idled out: goroutines %d -> %d, fds %d -> %d", gor0, gor1, fds0, fds1)
	}
}
