//go:build linux

package nsenter

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The Go runtime never ends an OS thread it has created: after a burst of
// blocking system calls, such as opening thousands of listeners at start-up,
// or a burst of traffic in which system calls were held up long enough for
// the runtime to hand their processor to another thread, the threads it made
// stay behind idle for the life of the process (golang/go#14592). A
// goroutine that exits while locked to its thread does end that thread, so
// once namespace switches and traffic through the listeners have been quiet
// for ShedDelay, the surplus is shed that way, one thread at a time.

// ShedDelay is how long namespace switches and traffic must have been quiet
// before the surplus of idle threads is shed. 0 turns shedding off.
var ShedDelay = 500 * time.Millisecond

// ShedKeep is how many threads shedding leaves: GOMAXPROCS plus a few for
// the runtime's own (sysmon, the template thread, the netpoller's waiter).
func ShedKeep() int { return runtime.GOMAXPROCS(0) + 4 }

var (
	activity atomic.Uint64 // namespace switches and Busy calls
	watching atomic.Bool   // a watch is running
	shedding sync.Mutex    // held by ShedThreads
)

// Busy notes a namespace switch, an accepted connection or a datagram. It
// costs two atomic operations; the first call after a quiet spell starts a
// watch that sheds idle threads once ShedDelay passes without another.
func Busy() {
	activity.Add(1)
	if !watching.Load() && ShedDelay > 0 && watching.CompareAndSwap(false, true) {
		go watch()
	}
}

func watch() {
	last := activity.Load()
	for {
		time.Sleep(ShedDelay)
		now := activity.Load()
		if now == last {
			break
		}
		last = now
	}
	watching.Store(false)
	if Threads() > ShedKeep() {
		ShedThreads(ShedKeep())
	}
}

// ShedThreads ends idle OS threads until the runtime owns at most keep, and
// returns how many it ended. It stops early when ending one no longer
// lowers the count: then no thread is idle, and the runtime has had to
// start a new one to replace it.
func ShedThreads(keep int) int {
	// One shedder at a time: two would each end a thread for the same
	// surplus.
	shedding.Lock()
	defer shedding.Unlock()
	ended, stalls := 0, 0
	for range 4096 {
		before := Threads()
		if before <= keep || stalls >= 3 {
			break
		}
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
			// Exiting while locked ends the thread.
		}()
		<-done
		// The thread ends just after the goroutine; give it a moment to
		// leave the count.
		var after int
		for range 20 {
			time.Sleep(100 * time.Microsecond)
			if after = Threads(); after < before {
				break
			}
		}
		if after < before {
			ended += before - after
			stalls = 0
		} else {
			stalls++
		}
	}
	return ended
}

// Threads is the number of OS threads the Go runtime owns.
func Threads() int {
	s := []metrics.Sample{{Name: "/sched/threads/total:threads"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int(s[0].Value.Uint64())
}
