//go:build linux && !386

package sctpnet

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

func osThreads(t *testing.T) int {
	n, err := sctptest.OSThreads()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIdleThreads is the reason for this package: 200 listeners blocked in
// Accept and 500 associations with both ends blocked in Read (1200 waiting
// goroutines) must not cost an OS thread each, as blocking calls would.
//
// Setting up does cost a few threads: a connect on loopback runs the whole
// SCTP handshake inside the system call, and while it runs the runtime
// hands the P to another thread. Those threads are bounded by how many
// system calls run at once, not by how many sockets wait, so the test
// grows the waiters in two steps and checks that the second step, four
// times the first, adds no more threads than the first (logged: under
// emulation the count is noisy), that the total stays a small constant,
// and, precisely, that no thread sits in accept4, recvmsg or connect (read
// from /proc/self/task/*/syscall; sctptest.CheckThreadDetector shows that this sees a
// blocking call).
func TestIdleThreads(t *testing.T) {
	const (
		listeners = 200
		conns     = 500
		maxTotal  = 64 // threads the setup may add, against ~1200 for blocking calls
	)
	sctptest.CheckThreadDetector(t)
	ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
	c, s := pair(t, Config{}, ln, "sctp4", "") // warm up the netpoller
	c.Write([]byte("x"))
	s.Read(make([]byte, 1))
	time.Sleep(100 * time.Millisecond)
	before := osThreads(t)
	goroutinesBefore := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var returned atomic.Int32 // waits that ended before the cleanup
	var cleanup atomic.Bool
	wait := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
			if !cleanup.Load() {
				returned.Add(1)
			}
		}()
	}
	var all []*Conn
	var mu sync.Mutex
	keep := func(c *Conn) {
		mu.Lock()
		all = append(all, c)
		mu.Unlock()
		wait(func() { c.ReadMsg(make([]byte, 64)) })
	}
	srv := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
	grow := func(nListeners, nConns int) {
		for range nListeners {
			l := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
			wait(func() { l.AcceptConn(ctx) })
		}
		accepted := make(chan error, 1)
		go func() {
			for range nConns {
				c, err := srv.AcceptConn(ctx)
				if err != nil {
					accepted <- err
					return
				}
				keep(c)
			}
			accepted <- nil
		}()
		for i := range nConns {
			c, err := Dial(ctx, nil, "sctp4", dialAddr(srv, ""))
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			keep(c)
		}
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	grow(listeners/5, conns/5)
	step1 := osThreads(t)
	grow(listeners-listeners/5, conns-conns/5)
	step2 := osThreads(t)
	goroutines := runtime.NumGoroutine() - goroutinesBefore
	t.Logf("OS threads: %d before, %d with %d listeners and %d associations idle, %d with %d and %d (%d goroutines waiting)",
		before, step1, listeners/5, conns/5, step2, listeners, conns, goroutines)
	if n := returned.Load(); n != 0 {
		t.Errorf("%d Accept/Read calls returned while they should wait", n)
	}
	if goroutines < listeners+2*conns {
		t.Errorf("only %d goroutines waiting", goroutines)
	}
	if blocked, err := sctptest.ThreadsInSocketCalls(); err != nil {
		t.Error(err)
	} else if blocked != 0 {
		t.Errorf("%d threads blocked in accept/recvmsg/connect", blocked)
	}
	if step2-before > maxTotal {
		t.Errorf("OS threads grew from %d to %d to %d: idle sockets hold threads", before, step1, step2)
	}

	cleanup.Store(true)
	cancel()
	for _, c := range all {
		c.Close()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close and cancel did not end the waiting calls")
	}
}
