//go:build linux

package nsenter_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// A burst of blocking system calls leaves the runtime with idle threads it
// never ends by itself; once namespace switches have been quiet for
// ShedDelay, the surplus is shed.
func TestIdleThreadsAreShedAfterABurst(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	keep := nsenter.ShedKeep()
	burst := nstest.ThreadBurst(keep + 40)
	if burst < keep+10 {
		t.Fatalf("the burst left %d threads; want at least %d to shed", burst, keep+10)
	}

	fd, err := ns.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)

	within := nsenter.ShedDelay + 5*time.Second
	now := nstest.WaitThreads(keep+2, within)
	t.Logf("threads: %d after the burst, %d after shedding (keep %d)", burst, now, keep)
	if now > keep+2 {
		t.Fatalf("threads: %d after the burst, still %d after %v; want at most %d", burst, now, within, keep+2)
	}
}

// Traffic (Busy) starts the same shedding once it has been quiet for
// ShedDelay; without it, idle threads stay.
func TestIdleThreadsAreShedAfterTraffic(t *testing.T) {
	keep := nsenter.ShedKeep()
	time.Sleep(3 * nsenter.ShedDelay) // let any earlier watch end
	burst := nstest.ThreadBurst(keep + 40)
	if burst < keep+10 {
		t.Fatalf("the burst left %d threads; want at least %d to shed", burst, keep+10)
	}
	if now := nstest.WaitThreads(keep+2, 3*nsenter.ShedDelay); now <= keep+2 {
		t.Fatalf("threads fell from %d to %d with no switch and no traffic; the test cannot tell Busy's effect", burst, now)
	}
	for range 5 {
		nsenter.Busy()
		time.Sleep(nsenter.ShedDelay / 5)
	}
	within := nsenter.ShedDelay + 5*time.Second
	now := nstest.WaitThreads(keep+2, within)
	t.Logf("threads: %d after the burst, %d after the traffic stopped (keep %d)", burst, now, keep)
	if now > keep+2 {
		t.Fatalf("threads: %d after the burst, still %d %v after the traffic; want at most %d", burst, now, within, keep+2)
	}
}
