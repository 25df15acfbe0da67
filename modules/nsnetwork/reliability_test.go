package nsnetwork_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
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

// summary prints one line per property so the figures can be quoted.
func summary(t *testing.T, property, tried string, n, failed int) {
	t.Helper()
	line := fmt.Sprintf("reliability: %s: %s: %d, failed: %d", property, tried, n, failed)
	t.Log(line)
	fmt.Println(line)
}

// Clients in many namespaces open, use and close connections continuously
// while the config is reloaded many times through the admin API: no failed
// connect, no reset, no lost byte. A UDP flow per namespace keeps getting
// every answer across the reloads too.
func TestZeroDropReloads(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, envInt("RELIABILITY_NAMESPACES", 50))
	reloads := envInt("RELIABILITY_RELOADS", 100)
	b := startBackend(t, "b")
	routes := map[string]route{}
	for _, ns := range nss {
		nsRoutes(routes, ns, "127.0.0.1:8000", b)
	}
	// Every load is forced (Cache-Control: must-revalidate), so each one
	// provisions and starts a fresh config before stopping the old one.
	// UDP flows idle out after 1s; a closed handle's reader lingers 2s.
	const idle = time.Second
	defer func(d time.Duration) { nsnetwork.CloseLinger = d }(nsnetwork.CloseLinger)
	nsnetwork.CloseLinger = 2 * idle
	cfg := layer4ConfigIdle(admin, routes, idle.String())
	admin.MustLoad(t, cfg, "json")
	settle()
	fds0, gor0 := fds(t), runtime.NumGoroutine()

	var (
		stop                    atomic.Bool
		conns, tcpFail, udpSent atomic.Int64
		udpLost                 atomic.Int64
		firstErr                atomic.Value
		wg                      sync.WaitGroup
	)
	fail := func(err error) {
		firstErr.CompareAndSwap(nil, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, ns := range nss {
		wg.Go(func() { // TCP: connect, ask, close, again
			for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
				line := fmt.Sprintf("%s #%d %s", ns, i, strings.Repeat("x", 1+i%700))
				got, err := ask(ns, "tcp", "127.0.0.1:8000", line)
				conns.Add(1)
				if err != nil || got != "b: "+line {
					tcpFail.Add(1)
					fail(fmt.Errorf("tcp in %s: got %.40q, %v", ns, got, err))
				}
			}
		})
		wg.Go(func() { // UDP: one flow, request/response
			c, err := dialIn(ns, "udp", "127.0.0.1:8000")
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			buf := make([]byte, 2048)
			for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
				line := fmt.Sprintf("%s udp #%d", ns, i)
				udpSent.Add(1)
				c.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Write([]byte(line + "\n")); err != nil {
					udpLost.Add(1)
					fail(fmt.Errorf("udp in %s: %v", ns, err))
					continue
				}
				n, err := c.Read(buf)
				if err != nil || strings.TrimSpace(string(buf[:n])) != "b: "+line {
					udpLost.Add(1)
					fail(fmt.Errorf("udp in %s: got %q, %v", ns, buf[:n], err))
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	loadFail := 0
	for range reloads {
		if err := admin.Load(cfg, "json"); err != nil {
			loadFail++
			fail(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	summary(t, "zero-drop reloads", fmt.Sprintf("%d reloads, %d namespaces, tcp connections", reloads, len(nss)), int(conns.Load()), int(tcpFail.Load()))
	summary(t, "zero-drop reloads", "udp request/responses", int(udpSent.Load()), int(udpLost.Load()))
	if tcpFail.Load()+udpLost.Load() > 0 || loadFail > 0 {
		t.Fatalf("%d tcp failures, %d udp lost, %d failed loads; first: %v", tcpFail.Load(), udpLost.Load(), loadFail, firstErr.Load())
	}

	// Every UDP flow, including those open across a reload, ends after its
	// idle timeout and leaves nothing behind.
	time.Sleep(3*idle + nsnetwork.CloseLinger)
	settle()
	fds1, gor1 := fds(t), runtime.NumGoroutine()
	summary(t, "udp flows idle out after reloads", fmt.Sprintf("goroutines %d -> %d, fds %d -> %d, flows", gor0, gor1, fds0, fds1), len(nss)*reloads, max(0, gor1-gor0-10))
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
	fds1, gor1, thr1 := fds(t), runtime.NumGoroutine(), nstest.Threads(t)
	summary(t, "no leaks", fmt.Sprintf("%d reloads then connections", reloads), per*len(nss), int(failed.Load()))
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
	summary(t, "namespace deleted while serving", "open connections finished", len(open), len(open)-finished)

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
