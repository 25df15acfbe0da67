//go:build linux

package nsenter_test

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/netnslistener/internal/nstest"
	"github.com/caddy-netns/caddy-netns/netnslistener/nsenter"
)

// A burst of blocking system calls leaves the runtime with idle threads it
// never ends by itself; once namespace switches have been quiet for
// ShedDelay, the surplus is shed.
func TestIdleThreadsAreShedAfterABurst(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])

	// Many goroutines in a blocking system call at once: the runtime
	// starts a thread for nearly every one.
	keep := nsenter.ShedKeep()
	var wg sync.WaitGroup
	for range keep + 40 {
		wg.Go(func() { _ = unix.Nanosleep(&unix.Timespec{Nsec: 50e6}, nil) })
	}
	wg.Wait()
	burst := nsenter.Threads()
	if burst < keep+10 {
		t.Fatalf("the burst left %d threads; want at least %d to shed", burst, keep+10)
	}

	fd, err := ns.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)

	deadline := time.Now().Add(nsenter.ShedDelay + 5*time.Second)
	now := nsenter.Threads()
	for now > keep+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		now = nsenter.Threads()
	}
	t.Logf("threads: %d after the burst, %d after shedding (keep %d)", burst, now, keep)
	if now > keep+2 {
		t.Fatalf("threads: %d after the burst, still %d after %v; want at most %d",
			burst, now, nsenter.ShedDelay+5*time.Second, keep+2)
	}
}
