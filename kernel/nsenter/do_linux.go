//go:build linux

package nsenter

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread for the life of the program
// (LockOSThread in an init function does that), so no other goroutine, and
// in particular none that Do switches into a namespace, ever runs on it.
// /proc/self names the main thread: were it switched into a namespace,
// even for a moment, or left there after a failed restore (the runtime
// cannot end the main thread), /proc/self/ns/net, which configs and allow
// lists may name, would be a tenant's namespace.
func init() { runtime.LockOSThread() }

// setns switches the calling thread's network namespace. Tests replace it
// to make a restore fail on purpose.
var setns = netns.Set

// self is the process's own network namespace, opened once. Every thread
// the scheduler hands goroutines to is in it: Do returns a thread to the
// scheduler only after switching it back, and discards it otherwise.
var self = sync.OnceValues(func() (*Namespace, error) {
	n, err := Open("/proc/self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("the process's own namespace: %w", err)
	}
	return n, nil
})

// discarded counts threads whose namespace could not be restored and that
// were therefore left locked for the runtime to terminate.
var discarded atomic.Uint64

// ThreadsDiscarded reports how many OS threads were discarded because their
// namespace could not be restored after a switch.
func ThreadsDiscarded() uint64 { return discarded.Load() }

// switchSlots bounds the namespace switches in progress at once.
var switchSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// Do runs fn on an OS thread that has been switched into the namespace, then
// switches the thread back. fn must be short and must not start goroutines
// or block on anything that another goroutine would have to do: only the
// calling goroutine is in the namespace. Create sockets in fn and do
// everything else (bind, connect, I/O) after Do returns: a socket stays in
// the namespace it was created in.
//
// The work happens on a goroutine of its own, locked to its thread, so the
// caller's thread state is never touched. If the process's namespace cannot
// be restored, that thread stays locked and is discarded by the runtime when
// the goroutine exits; no other goroutine ever runs on it. When n is the
// process's own namespace there is nothing to switch: fn runs on the
// calling goroutine, which must therefore not be one that has locked its
// thread into another namespace itself.
func (n *Namespace) Do(fn func() error) error {
	own, err := self()
	if err != nil {
		return err
	}
	if own.ID == n.ID {
		// Already there: no switch, no privilege needed.
		return fn()
	}
	// A locked goroutine needs a thread of its own; bounding how many
	// switches run at once bounds the threads a burst of dials can make.
	switchSlots <- struct{}{}
	defer func() { <-switchSlots }()
	type result struct{ err, restore error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No deferred unlock: the thread may only go back to the
		// scheduler once it is in the process's namespace again.
		if err := setns(n.h); err != nil {
			// A failed setns changes nothing: the thread is still
			// in the process's namespace.
			runtime.UnlockOSThread()
			done <- result{err: enterError(n, err)}
			return
		}
		ferr := fn()
		if err := setns(own.h); err != nil {
			// The thread is still in n. Hand the error over and
			// return with the thread locked: the runtime terminates
			// it instead of reusing it. Nothing else runs here, in
			// particular not the report, which may log or block.
			done <- result{err: ferr, restore: err}
			return
		}
		runtime.UnlockOSThread()
		done <- result{err: ferr}
	}()
	r := <-done
	// From here on the caller's own thread, which the locked goroutine
	// above can never have been on.
	if r.restore != nil {
		discarded.Add(1)
		if f := OnThreadDiscarded; f != nil {
			f(fmt.Errorf("netns %q: restoring the thread's namespace: %w (thread discarded)", n.Spec, r.restore))
		}
	}
	Busy()
	return r.err
}

func enterError(n *Namespace, err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("entering %s: %w: %w", n.Path, err, ErrPermission)
	}
	return fmt.Errorf("entering %s: %w", n.Path, err)
}

// Socket creates a socket inside the namespace. The socket is non-blocking
// and close-on-exec. It is the only thing that needs the namespace: bind,
// listen and connect can follow from any thread.
func (n *Namespace) Socket(domain, typ, proto int) (int, error) {
	fd := -1
	err := n.Do(func() error {
		var err error
		fd, err = unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, err
	}
	return fd, nil
}
