//go:build linux

package fanin

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot fails under CI and skips otherwise when the test cannot make
// network namespaces.
func needRoot(t testing.TB) {
	t.Helper()
	warmNetpoll.Do(func() {
		// The runtime opens its own epoll and eventfd descriptors on
		// first use of the netpoller: do that before any test counts.
		if r, w, err := os.Pipe(); err == nil {
			r.Close()
			w.Close()
		}
	})
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root (CAP_SYS_ADMIN) to make network namespaces: run `sudo go test ./kernel/fanin/`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var warmNetpoll sync.Once

// netns is an anonymous network namespace made by the test; it lives as
// long as fd (or a socket in it) is open.
type netns struct{ fd int }

// onThread runs fn on a locked thread of its own. If fn leaves the thread
// in another namespace (restore failed), the thread stays locked and the
// runtime discards it.
func onThread(fn func(restore func() error) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return // still locked: discarded
		}
		restore := func() error { return unix.Setns(orig, unix.CLONE_NEWNET) }
		err = fn(restore)
		rerr := restore()
		unix.Close(orig) // before answering: callers count descriptors
		if rerr != nil {
			errc <- fmt.Errorf("restoring the thread's namespace: %w", rerr)
			return // still locked: discarded
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// newNetns makes n namespaces with lo up and calls each(i) inside
// namespace i, all on one locked thread. The namespaces are released when
// the test ends (once no socket in them is open either).
func newNetns(t testing.TB, n int, each func(i int) error) []netns {
	t.Helper()
	nss := make([]netns, 0, n)
	t.Cleanup(func() {
		for _, ns := range nss {
			unix.Close(ns.fd)
		}
	})
	err := onThread(func(func() error) error {
		for i := range n {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			nss = append(nss, netns{fd})
			if err := loUp(); err != nil {
				return err
			}
			if each != nil {
				if err := each(i); err != nil {
					return fmt.Errorf("namespace %d: %w", i, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return nss
}

// in runs fn inside each of nss in turn on one locked thread.
func in(nss []netns, fn func(i int) error) error {
	return onThread(func(func() error) error {
		for i, ns := range nss {
			if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("setns: %w", err)
			}
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	})
}

func loUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// socketFD makes a socket bound to 127.0.0.1:port in the thread's
// namespace, listening when it is a stream socket.
func socketFD(typ, port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind 127.0.0.1:%d: %w", port, err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 128); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// dialFD connects a socket of typ to 127.0.0.1:port in the thread's
// namespace (blocking; loopback answers at once).
func dialFD(typ, port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect 127.0.0.1:%d: %w", port, err)
	}
	return fd, nil
}

// fileConn makes a net.Conn of fd, which it consumes.
func fileConn(t testing.TB, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "client")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fdCount(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// procStatus returns a number field (Threads, VmRSS in kB) of
// /proc/self/status.
func procStatus(t testing.TB, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.Fields(v)[0])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// settle waits for goroutines that are ending (closed conns, finished
// helpers) to be gone, and returns the count.
func settle(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 200 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}
