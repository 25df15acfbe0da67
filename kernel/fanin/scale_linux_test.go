//go:build linux

package fanin

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestScale prints what members cost at N = 1000 and 10000 (1000 only
// with -short): the time to add them all, the resident memory per member,
// goroutines and threads with Accept or ReadFrom parked. The sockets are
// made beforehand in one private namespace (their cost is the kernel's and
// the caller's, not this package's). Nothing is asserted but that the
// last member serves and that no descriptor is left behind.
//
//	go test -count=1 -v -run TestScale ./kernel/fanin/
func TestScale(t *testing.T) {
	needRoot(t)
	sizes := []int{1000, 10000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		for _, kind := range []string{"tcp", "udp"} {
			t.Run(fmt.Sprintf("%s-%d", kind, n), func(t *testing.T) {
				// A namespace of its own: ports 30000-39999 overlap the
				// ephemeral range, where an earlier client may linger.
				scale(t, privateNetns(t), kind, n)
			})
		}
	}
}

type fanner interface {
	AddFD(tag any, fd int) error
	Close() error
}

func scale(t *testing.T, inNS func(func() error) error, kind string, n int) {
	const base = 30000
	typ := unix.SOCK_STREAM
	if kind == "udp" {
		typ = unix.SOCK_DGRAM
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n+256) {
		t.Fatalf("needs %d descriptors, RLIMIT_NOFILE allows %d: raise it (ulimit -n %d) or run with -short", n+256, lim.Cur, n+256)
	}
	fd0 := fdCount(t)
	fds := openSockets(t, inNS, typ, base, n)

	runtime.GC()
	debug.FreeOSMemory()
	rss0, g0 := procStatus(t, "VmRSS"), runtime.NumGoroutine()

	start := time.Now()
	var f fanner
	var err error
	if kind == "tcp" {
		f, err = NewListener(nil)
	} else {
		f, err = NewPacketConn(nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, fd := range fds {
		if err := f.AddFD(i, fd); err != nil {
			t.Fatal(err)
		}
	}
	bringUp := time.Since(start)

	runtime.GC()
	debug.FreeOSMemory()
	rss1 := procStatus(t, "VmRSS")

	// Park the one reader, as a server would, then serve the last member.
	done := make(chan error, 1)
	go func() {
		var tag any
		switch f := f.(type) {
		case *Listener:
			c, err := f.Accept()
			if err != nil {
				done <- err
				return
			}
			tag = c.(*Conn).Tag()
			c.Close()
		case *PacketConn:
			_, from, err := f.ReadFrom(make([]byte, 64))
			if err != nil {
				done <- err
				return
			}
			tag = from.(*Addr).Tag()
		}
		if tag != n-1 {
			done <- fmt.Errorf("served by member %v, want %d", tag, n-1)
			return
		}
		done <- nil
	}()
	time.Sleep(100 * time.Millisecond)
	g, threads := runtime.NumGoroutine(), procStatus(t, "Threads")
	if err := inNS(func() error {
		fd, err := dialFD(typ, base+n-1)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if typ == unix.SOCK_DGRAM {
			_, err = unix.Write(fd, []byte("x"))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("last member not served in 30 s")
	}
	t.Logf("fanin: %s N=%d: bring-up %v (%.2f µs/member), RSS +%d KiB (%.3f KiB/member), goroutines %d -> %d (reader parked), threads %d",
		kind, n, bringUp.Round(time.Microsecond), float64(bringUp.Microseconds())/float64(n),
		rss1-rss0, float64(rss1-rss0)/float64(n), g0, g, threads)
	f.Close()
	if fd := fdCount(t); fd != fd0 {
		t.Errorf("fds: %d after Close, %d before", fd, fd0)
	}
}
