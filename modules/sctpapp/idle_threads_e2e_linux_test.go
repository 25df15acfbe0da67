//go:build linux && !386

package sctpapp_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
)

// TestProxyIdleThreads is sctpnet's TestIdleThreads through a real Caddy:
// an sctp app loaded through the admin API listens on 200 ports and
// proxies 1000 idle associations to an echo upstream in this process
// (4000 SCTP sockets, each end of each leg with a goroutine waiting in a
// read). Idle sockets must not hold OS threads: no thread may sit in
// accept4, recvmsg or connect (ThreadsInSocketCalls), nor a read buffer (the
// Go heap per idle association is checked), and the thread count
// may grow only by what concurrent setup costs (a connect on loopback
// runs the whole handshake in the system call), checked as in
// TestIdleThreads: 200 associations first, then 800 more, which must not
// push the total past a small constant. When everything is closed the
// goroutines return to near where they started.
func TestProxyIdleThreads(t *testing.T) {
	const (
		ports     = 200
		firstPort = 20000 // below the ephemeral range the dials use
		conns     = 1000
		workers   = 8  // dials (each with a ping) running at once
		maxTotal  = 64 // threads the setup may add, against thousands for blocking calls
		slack     = 20 // goroutines that may outlive the test's associations
	)
	a := requireGuestSetup(t)
	sctptest.CheckThreadDetector(t)

	up := startUpstream(t, nil, func(c *sctpnet.Conn) { sctprelay.Echo(c) })
	// Warm up Caddy's admin server, the netpoller and the relay.
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"warm": proxyServer([]string{fmt.Sprintf("sctp/127.0.0.1:%d", firstPort+ports)}, "sctp/"+up.addr),
	}, ""))
	warm := mustDial(t, nil, fmt.Sprintf("127.0.0.1:%d", firstPort+ports))
	echoOnce(t, warm, 0)
	warm.Close()
	a.mustLoad(t, `{`+a.adminJSON()+`}`)
	waitNoHandlers(t)
	time.Sleep(200 * time.Millisecond)

	threads := func() int {
		n, err := sctptest.OSThreads()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, goroutinesBefore := threads(), runtime.NumGoroutine()
	memBefore, fdsBefore := memAvailableKiB(), openFDs()

	listen := fmt.Sprintf("sctp/127.0.0.1:%d-%d", firstPort, firstPort+ports-1)
	a.mustLoad(t, a.sctpConfig(map[string]string{"many": proxyServer([]string{listen}, "sctp/"+up.addr)}, ""))
	time.Sleep(200 * time.Millisecond)
	loaded := threads()

	var (
		mu  sync.Mutex
		all []*sctpnet.Conn
	)
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			c.Close()
		}
		all = nil
	}
	t.Cleanup(closeAll)
	// grow opens associations from index from to to, each to the next of
	// the 200 ports, and pings each once so that its relay and upstream
	// association are up too.
	grow := func(from, to int) {
		jobs := make(chan int)
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					c, err := sctpnet.Dial(ctx, nil, "sctp4", fmt.Sprintf("127.0.0.1:%d", firstPort+i%ports))
					cancel()
					if err != nil {
						errs <- fmt.Errorf("association %d: %w", i, err)
						return
					}
					mu.Lock()
					all = append(all, c)
					mu.Unlock()
					if err := echo(c, i); err != nil {
						errs <- fmt.Errorf("association %d: %w", i, err)
						return
					}
				}
			}()
		}
	feed:
		for i := from; i < to; i++ {
			select {
			case jobs <- i:
			case err := <-errs:
				t.Error(err)
				break feed
			}
		}
		close(jobs)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(300 * time.Millisecond)
	}

	heap := func() (heap, stack uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse, ms.StackInuse
	}
	heapBefore, stackBefore := heap()

	start := time.Now()
	grow(0, conns/5)
	step1 := threads()
	grow(conns/5, conns)
	step2 := threads()
	goroutines := runtime.NumGoroutine() - goroutinesBefore
	heapWith, stackWith := heap()
	// Each association here is Caddy's two legs and relay and the test's
	// echo upstream, all in this process; once idle none may hold a read
	// buffer (it used to be 64 KiB for each of the three readers).
	perHeap := (int64(heapWith) - int64(heapBefore)) / conns
	t.Logf("Go memory per idle association (both legs, relay and echo upstream): %d KiB heap, %d KiB goroutine stacks",
		perHeap>>10, (int64(stackWith)-int64(stackBefore))/conns>>10)
	if perHeap > 32<<10 {
		t.Errorf("the Go heap grew by %d KiB per idle association: idle associations hold read buffers", perHeap>>10)
	}
	t.Logf("OS threads: %d before, %d with %d listeners, %d with %d idle associations, %d with %d (%d goroutines more; set up in %v)",
		before, loaded, ports, step1, conns/5, step2, conns, goroutines, time.Since(start).Round(time.Millisecond))
	t.Logf("guest memory available: %d MiB before, %d MiB with %d associations; open descriptors %d before, %d with them",
		memBefore>>10, memAvailableKiB()>>10, conns, fdsBefore, openFDs())
	// Caddy's side of each association has a relay reading both ways and
	// the upstream an echo loop: at least 3 waiting reads per association.
	if goroutines < 3*conns {
		t.Errorf("only %d goroutines more with %d associations relayed: are they not all up?", goroutines, conns)
	}
	// A blocked thread stays blocked; a thread caught in a quick send or a
	// handshake does not: take the least of a few looks.
	blocked := -1
	for range 5 {
		n, err := sctptest.ThreadsInSocketCalls()
		if err != nil {
			t.Fatal(err)
		}
		if blocked < 0 || n < blocked {
			blocked = n
		}
		if blocked == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if blocked != 0 {
		t.Errorf("%d threads blocked in accept4/recvmsg/connect with %d listeners and %d associations idle", blocked, ports, conns)
	}
	if step2-before > maxTotal {
		t.Errorf("OS threads grew from %d to %d to %d to %d: idle listeners or associations hold threads", before, loaded, step1, step2)
	}

	closeAll()
	a.mustLoad(t, `{`+a.adminJSON()+`}`)
	var now int
	for range 300 {
		if now = runtime.NumGoroutine(); now <= goroutinesBefore+slack {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d with the associations, %d after closing them; OS threads %d after",
		goroutinesBefore, goroutinesBefore+goroutines, now, threads())
	if now > goroutinesBefore+slack {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 30s after closing everything, %d before:\n%s", now, goroutinesBefore, buf[:runtime.Stack(buf, true)])
	}
}

// echo sends a 64-byte message on c and reads it back.
func echo(c *sctpnet.Conn, i int) error {
	msg := []byte(fmt.Sprintf("%-64d", i))
	if _, err := c.WriteMsg(msg, sctpnet.Info{PPID: sctpnet.RawPPID(uint32(i))}); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	defer c.SetReadDeadline(time.Time{})
	got, info, err := c.ReadMessage(nil)
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if string(got) != string(msg) || info.PPIDNumber() != uint32(i) {
		return fmt.Errorf("echo %q with PPID %d, want %q with PPID %d", got, info.PPIDNumber(), msg, i)
	}
	return nil
}

func echoOnce(t *testing.T, c *sctpnet.Conn, i int) {
	t.Helper()
	if err := echo(c, i); err != nil {
		t.Fatal(err)
	}
}

// memAvailableKiB is MemAvailable from /proc/meminfo, or 0.
func memAvailableKiB() int {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		var kib int
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kib); err == nil {
			return kib
		}
	}
	return 0
}

func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}
