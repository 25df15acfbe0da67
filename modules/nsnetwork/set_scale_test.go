package nsnetwork_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// TestSetScale is the benchmark of namespace sets; it logs a table and
// asserts no timings. One set listens on tcp and udp in every namespace of
// a pattern while SET_NAMESPACES namespaces (default 100; 1000 for the
// full run) are created at once. It reports how long until every namespace
// answers over both, the OS threads against GOMAXPROCS, resident memory
// per namespace listener, and how long until 100 namespaces deleted at
// once have left the pool.
//
//	SET_NAMESPACES=1000 go test -count=1 -v -run TestSetScale ./modules/nsnetwork/
func TestSetScale(t *testing.T) {
	nstest.Require(t)
	n := 100
	if v, err := strconv.Atoi(os.Getenv("SET_NAMESPACES")); err == nil && v > 0 {
		n = v
	}
	admin := e2e.Start(t)
	prefix := setPrefix()
	cfg := fmt.Sprintf(`{%s,"apps":{"layer4":{"servers":{"scale":{
		"listen":["netns/%[2]s*/tcp/127.0.0.1:8000","netns/%[2]s*/udp/127.0.0.1:8000"],
		"idle_timeout":1000000000,
		"routes":[{"handle":[{"handler":"echo"}]}]}}}}}`, admin.WithAdmin(), prefix)
	admin.MustLoad(t, cfg, "json")

	names := make([]string, n)
	var batch strings.Builder
	for i := range names {
		names[i] = fmt.Sprintf("%s%04d", prefix, i)
		fmt.Fprintf(&batch, "netns add %s\n", names[i])
	}
	t.Cleanup(func() { nstest.Del(names...) })

	setSettle()
	threads0, rss0, heap0 := nstest.Threads(t), setRSS(t), setHeapInuse()
	var maxThreads atomic.Int64
	maxThreads.Store(int64(threads0))
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if th := int64(nstest.Threads(t)); th > maxThreads.Load() {
					maxThreads.Store(th)
				}
			}
		}
	})

	start := time.Now()
	nstest.Batch(t, batch.String())
	created := time.Since(start)
	for _, ns := range names {
		if err := nstest.LoopbackUp(ns); err != nil {
			t.Fatal(err)
		}
	}
	loUp := time.Since(start)
	ids := make([]nsenter.ID, n)
	for i, ns := range names {
		ids[i] = nstest.ID(t, ns)
	}
	setWaitFor(t, 60*time.Second, func() bool { return setCountInPool(ids) == 2*n })
	listeningAt := time.Since(start)
	// Threads up to here are Caddy's following the directory (and this
	// test's ip and lo-up calls); the probes below add their own clients.
	maxThreadsOpen := max(maxThreads.Load(), int64(nstest.Threads(t)))
	failed := setProbeAll(t, names, 60*time.Second)
	answeredAt := time.Since(start)
	close(stop)
	sampler.Wait()
	if failed > 0 {
		t.Errorf("%d namespaces never answered", failed)
	}
	threads1 := nstest.Threads(t)
	// Let the UDP flows of the probes end (idle timeout 1s) so only the
	// listeners remain.
	time.Sleep(1500 * time.Millisecond)
	setSettle()
	rss1, heap1 := setRSS(t), setHeapInuse()

	// The admin endpoint over every listener.
	t0 := time.Now()
	getListeners(t, admin, "")
	adminTook := time.Since(t0)
	t0 = time.Now()
	getListeners(t, admin, "?connections=kernel")
	adminKernelTook := time.Since(t0)

	del := min(100, n)
	var delBatch strings.Builder
	for _, ns := range names[:del] {
		fmt.Fprintf(&delBatch, "netns del %s\n", ns)
	}
	start = time.Now()
	nstest.Batch(t, delBatch.String())
	deleted := time.Since(start)
	setWaitFor(t, 30*time.Second, func() bool { return setCountInPool(ids[:del]) == 0 })
	goneAt := time.Since(start)

	listeners := 2 * n
	t.Logf("namespace set scale, %d namespaces, tcp+udp (%d listeners), GOMAXPROCS %d", n, listeners, runtime.GOMAXPROCS(0))
	t.Logf("  %-52s %v", "ip -batch netns add (all)", created.Round(time.Millisecond))
	t.Logf("  %-52s %v", "... and lo up in each", loUp.Round(time.Millisecond))
	t.Logf("  %-52s %v (%v after lo up)", "until every member socket is open", listeningAt.Round(time.Millisecond),
		(listeningAt - loUp).Round(time.Millisecond))
	t.Logf("  %-52s %v", "until every namespace answered tcp and udp", answeredAt.Round(time.Millisecond))
	t.Logf("  %-52s %d before, %d max until all members open, %d max with probes (8 client workers), %d after",
		"OS threads", threads0, maxThreadsOpen, maxThreads.Load(), threads1)
	t.Logf("  %-52s %.1f KiB (Go heap in use %.1f KiB; kernel socket memory not included)", "resident memory per listener (after GC)",
		float64(rss1-rss0)/1024/float64(listeners), float64(int64(heap1)-int64(heap0))/1024/float64(listeners))
	t.Logf("  %-52s %v", "GET /netns/listeners", adminTook.Round(time.Millisecond))
	t.Logf("  %-52s %v", "GET /netns/listeners?connections=kernel", adminKernelTook.Round(time.Millisecond))
	t.Logf("  %-52s %v", fmt.Sprintf("ip -batch netns del (%d at once)", del), deleted.Round(time.Millisecond))
	t.Logf("  %-52s %v", fmt.Sprintf("until all %d have left the pool", del), goneAt.Round(time.Millisecond))
	// Threads: within a small constant of where they were (the runtime
	// adds at most a few for blocking syscalls, about GOMAXPROCS).
	if limit := int64(threads0 + runtime.GOMAXPROCS(0) + 8); maxThreads.Load() > limit {
		t.Errorf("threads grew from %d to %d (limit %d)", threads0, maxThreads.Load(), limit)
	}
}

// setCountInPool counts the tcp and udp :8000 sockets in the namespaces ids.
func setCountInPool(ids []nsenter.ID) int {
	want := map[nsenter.ID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	c := 0
	for _, s := range nsnetwork.Sockets() {
		if want[s.NamespaceID] && s.Address == "127.0.0.1:8000" {
			c++
		}
	}
	return c
}

func setWaitFor(t *testing.T, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("not after %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// setProbeAll asks every namespace over tcp and udp until each has answered,
// with a few workers, and returns how many never did.
func setProbeAll(t *testing.T, names []string, d time.Duration) int {
	deadline := time.Now().Add(d)
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		next   atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) {
					return
				}
				ok := false
				for !ok && time.Now().Before(deadline) {
					ok = setEchoes(names[i], "tcp") && setEchoes(names[i], "udp")
					if !ok {
						time.Sleep(20 * time.Millisecond)
					}
				}
				if !ok {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}

// setEchoes reports whether the echo server answers a client in ns.
func setEchoes(ns, network string) bool {
	n, err := nsenter.Open(ns)
	if err != nil {
		return false
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := nsenter.Dial(ctx, n, network, "127.0.0.1:8000")
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("ping " + ns + "\n")); err != nil {
		return false
	}
	if network == "udp" {
		buf := make([]byte, 256)
		k, err := c.Read(buf)
		return err == nil && string(buf[:k]) == "ping "+ns+"\n"
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping "+ns+"\n"
}

func setSettle() {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(100 * time.Millisecond)
}

func setHeapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// setRSS returns this process's resident set size.
func setRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
