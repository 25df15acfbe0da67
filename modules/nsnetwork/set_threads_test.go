package nsnetwork_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// Threads stay flat when every member of a set answers a 64-way
// concurrent probe, whether the set echoes or proxies each connection into
// its namespace (netns_proxy to a second set on port 9000, which dials
// into the namespace: a namespace switch per connection; the echo probe
// asks that second set directly). It prints the
// threads before, the most seen during each probe, and after, for
// SET_THREAD_NAMESPACES namespaces (default 300).
func TestSetThreadsUnderConcurrentProbe(t *testing.T) {
	nstest.Require(t)
	n := envInt("SET_THREAD_NAMESPACES", 300)
	admin := e2e.Start(t)
	prefix := setPrefix()
	cfg := fmt.Sprintf(`{%s,"apps":{"layer4":{"servers":{
		"echo":{"listen":["netns/%[2]s*/tcp/127.0.0.1:9000"],"routes":[{"handle":[{"handler":"echo"}]}]},
		"proxy":{"listen":["netns/%[2]s*/tcp/127.0.0.1:8000"],"routes":[{"handle":[{"handler":"netns_proxy",
			"upstreams":[{"dial":"netns/{l4.netns.name}/tcp/127.0.0.1:9000"}]}]}]}}}}}`, admin.WithAdmin(), prefix)
	admin.MustLoad(t, cfg, "json")
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	addNamed(t, names...)
	eventually(t, 60*time.Second, "every member open", func() bool { return poolCount(prefix) == 2*n })

	var firstErr atomic.Value
	probe := func(port string) (maxThreads, failed int) {
		var (
			mx   atomic.Int64
			fail atomic.Int64
			next atomic.Int64
			wg   sync.WaitGroup
			stop = make(chan struct{})
		)
		mx.Store(int64(nstest.Threads(t)))
		go func() {
			tk := time.NewTicker(5 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if th := int64(nstest.Threads(t)); th > mx.Load() {
						mx.Store(th)
					}
				}
			}
		}()
		for range 64 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(names) {
						return
					}
					if got, err := ask(names[i], "tcp", "127.0.0.1:"+port, "ping"); err != nil || got != "ping" {
						fail.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s port %s: %q %v", names[i], port, got, err))
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		return int(mx.Load()), int(fail.Load())
	}
	setSettle()
	th0 := nstest.Threads(t)
	echoMax, echoFailed := probe("9000")
	proxyMax, proxyFailed := probe("8000")
	th1 := nstest.Threads(t)
	t.Logf("threads with %d members (GOMAXPROCS %d): %d before; a 64-way probe of every member: %d max echoing, %d max proxying into the namespace; %d after",
		n, runtime.GOMAXPROCS(0), th0, echoMax, proxyMax, th1)
	fmt.Printf("set-scale: threads at %d members: %d idle, %d max under a 64-way echo probe, %d max under a 64-way proxy probe\n", n, th0, echoMax, proxyMax)
	if echoFailed+proxyFailed > 0 {
		t.Errorf("%d echo and %d proxied probes failed (first: %v)", echoFailed, proxyFailed, firstErr.Load())
	}
	if limit := th0 + runtime.GOMAXPROCS(0) + 8; max(echoMax, proxyMax) > limit {
		t.Errorf("threads grew from %d to %d under the probes (limit %d)", th0, max(echoMax, proxyMax), limit)
	}
}
