//go:build linux

package fanin

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAddErrors checks what AddFD refuses, and that it leaves the
// descriptor with the caller then.
func TestAddErrors(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := NewPacketConn(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tcp := openSockets(t, inNS, unix.SOCK_STREAM, 22000, 2)
	udp := openSockets(t, inNS, unix.SOCK_DGRAM, 22000, 2)
	unlistened, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(unlistened)
	for _, tc := range []struct {
		name string
		add  func() error
		want string
	}{
		{"udp to listener", func() error { return l.AddFD("u", udp[0]) }, "not a TCP socket"},
		{"not listening", func() error { return l.AddFD("n", unlistened) }, "socket is not listening"},
		{"tcp to packetconn", func() error { return pc.AddFD("t", tcp[0]) }, "not a UDP socket"},
		{"bad fd", func() error { return l.AddFD("b", 1<<20) }, "bad file descriptor"},
		{"uncomparable tag", func() error { return l.AddFD([]int{1}, tcp[0]) }, "cannot be a map key"},
		{"duplicate tag", func() error {
			if err := l.AddFD("x", tcp[0]); err != nil {
				return err
			}
			return l.AddFD("x", tcp[1])
		}, "tag already in use"},
		{"duplicate label", func() error {
			if err := pc.AddFD("7", udp[0]); err != nil {
				return err
			}
			return pc.AddFD(7, udp[1])
		}, `also prints as "7"`},
		{"remove unknown", func() error { return l.Remove("nope") }, "no such member"},
		{"remove uncomparable", func() error { return pc.Remove([]int{1}) }, "no such member"},
		{"stats uncomparable", func() error {
			if l.Stats(map[int]int{}) != nil {
				return nil
			}
			return l.AddFD("after", -1) // the registry is still usable
		}, "bad file descriptor"},
	} {
		err := tc.add()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// The refused descriptors are still open and the caller's.
	for _, fd := range []int{tcp[1], udp[1], unlistened} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			t.Errorf("fd %d was closed by a refused AddFD: %v", fd, err)
		}
	}
	unix.Close(tcp[1])
	unix.Close(udp[1])
	if err := l.Remove("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(tcp[0]), unix.F_GETFD, 0); err == nil {
		t.Errorf("Remove left fd %d open", tcp[0])
	}
}

// TestRemoveDropsQueued connects to a member, lets Accept queue its
// connections, removes it, and checks that Accept then returns only the
// other member's connection and that the queued ones were closed.
func TestRemoveDropsQueued(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	fd0 := fdCount(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fds := openSockets(t, inNS, unix.SOCK_STREAM, 23000, 2)
	l.AddFD("gone", fds[0])
	l.AddFD("kept", fds[1])
	var clients []int
	defer func() {
		for _, fd := range clients {
			unix.Close(fd)
		}
	}()
	if err := inNS(func() error {
		for range 5 {
			fd, err := dialFD(unix.SOCK_STREAM, 23000)
			if err != nil {
				return err
			}
			clients = append(clients, fd)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if q := queued(l); q != 4 {
		t.Fatalf("%d connections queued, want 4 (Accept takes the whole backlog)", q)
	}
	if err := l.Remove("gone"); err != nil {
		t.Fatal(err)
	}
	if q := queued(l); q != 0 {
		t.Errorf("%d connections of the removed member still queued", q)
	}
	// The removed member's clients see their connection closed.
	for _, fd := range clients[1:] {
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
		n, err := unix.Read(fd, make([]byte, 1))
		if n != 0 || (err != nil && err != unix.ECONNRESET) {
			t.Errorf("client of the removed member read %d, %v; want EOF or reset", n, err)
		}
	}
	if err := inNS(func() error {
		fd, err := dialFD(unix.SOCK_STREAM, 23000)
		if err == nil {
			unix.Close(fd)
			return errors.New("the removed member's port still accepts")
		}
		fd, err = dialFD(unix.SOCK_STREAM, 23001)
		clients = append(clients, fd)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if tag := c.(*Conn).Tag(); tag != "kept" {
		t.Errorf("accepted a connection tagged %v after removing it", tag)
	}
	c.Close()
	l.Close()
	for _, fd := range clients {
		unix.Close(fd)
	}
	clients = nil
	if fd := fdCount(t); fd != fd0 {
		t.Errorf("fds: %d after closing, %d before", fd, fd0)
	}
}

// TestChurn adds and removes members while clients connect to every live
// one, and checks that each connection is tagged with the member whose
// port it reached, that no Accept begun after a Remove returned yields a
// connection of that member, and that nothing leaks.
func TestChurn(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	g0, fd0 := runtime.NumGoroutine(), fdCount(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	const (
		live   = 16  // members at any time
		rounds = 400 // members removed and replaced, one per round
		base   = 24000
	)
	// A member's tag is its generation; generation g listens on base+g%
	// (2*live), so a port is reused only after its old member is gone,
	// and a connection's local port tells which member it reached.
	var (
		mu      sync.RWMutex // Remove holds it to write; Accept to read
		removed = map[int]bool{}
	)
	add := func(g int) {
		fd := openSockets(t, inNS, unix.SOCK_STREAM, base+g%(2*live), 1)[0]
		if err := l.AddFD(g, fd); err != nil {
			t.Fatal(err)
		}
	}
	for g := range live {
		add(g)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var accepted, bad int
	wg.Add(1)
	go func() { // the server
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.RLock()
			l.SetDeadline(time.Now().Add(20 * time.Millisecond))
			c, err := l.Accept()
			if err != nil {
				mu.RUnlock()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				t.Error(err)
				return
			}
			g := c.(*Conn).Tag().(int)
			gone := removed[g]
			mu.RUnlock()
			port := c.LocalAddr().(*net.TCPAddr).Port
			if gone || port != base+g%(2*live) {
				bad++
				t.Errorf("connection tagged %d (removed %v) reached port %d", g, gone, port)
			}
			accepted++
			c.Close()
		}
	}()
	wg.Add(1)
	go func() { // the clients: one connection to each port, round after round
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			inNS(func() error {
				for p := range 2 * live {
					if fd, err := dialFD(unix.SOCK_STREAM, base+p); err == nil {
						unix.Close(fd)
					}
				}
				return nil
			})
		}
	}()
	for g := range rounds {
		mu.Lock()
		if err := l.Remove(g); err != nil {
			t.Error(err)
		}
		removed[g] = true
		mu.Unlock()
		add(g + live)
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("fanin: churn: %d members replaced, %d connections accepted, %d misdelivered", rounds, accepted, bad)
	if accepted == 0 {
		t.Error("no connection accepted during churn")
	}
	if l.Len() != live {
		t.Errorf("%d members, want %d", l.Len(), live)
	}
	l.Close()
	if g := settle(g0); g > g0 {
		t.Errorf("goroutines: %d after, %d before", g, g0)
	}
	if fd := fdCount(t); fd != fd0 {
		t.Errorf("fds: %d after, %d before", fd, fd0)
	}
}
