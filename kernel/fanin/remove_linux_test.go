//go:build linux

package fanin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWake checks that Close and a deadline wake a parked Accept and
// ReadFrom, and that a deadline can be lifted again.
func TestWake(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	type waiter interface {
		wait() error
		deadline(time.Time) error
		close() error
	}
	mk := map[string]func() waiter{
		"listener": func() waiter {
			l, err := NewListener(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.AddFD("a", openSockets(t, inNS, unix.SOCK_STREAM, 21000, 1)[0]); err != nil {
				t.Fatal(err)
			}
			return lw{l}
		},
		"packetconn": func() waiter {
			c, err := NewPacketConn(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.AddFD("a", openSockets(t, inNS, unix.SOCK_DGRAM, 21000, 1)[0]); err != nil {
				t.Fatal(err)
			}
			return pw{c}
		},
	}
	for name, newW := range mk {
		t.Run(name, func(t *testing.T) {
			w := newW()
			result := func() error {
				errc := make(chan error, 1)
				go func() { errc <- w.wait() }()
				select {
				case err := <-errc:
					return err
				case <-time.After(30 * time.Second):
					t.Fatal("still parked after 30 s")
					return nil
				}
			}
			// A deadline set while parked wakes it.
			errc := make(chan error, 1)
			go func() { errc <- w.wait() }()
			time.Sleep(50 * time.Millisecond)
			w.deadline(time.Now().Add(20 * time.Millisecond))
			select {
			case err := <-errc:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("after the deadline: %v, want os.ErrDeadlineExceeded", err)
				}
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("%v is not a net.Error timeout", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("deadline did not wake the waiter")
			}
			// A past deadline fails at once; the zero time lifts it.
			if err := result(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("with a past deadline: %v", err)
			}
			w.deadline(time.Time{})
			go func() { errc <- w.wait() }()
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-errc:
				t.Fatalf("returned %v with no deadline and no traffic", err)
			default:
			}
			// Close wakes it.
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Close did not wake the waiter")
			}
			if err := result(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("after Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

type lw struct{ *Listener }

func (w lw) wait() error {
	c, err := w.Accept()
	if c != nil {
		c.Close()
	}
	return err
}
func (w lw) deadline(t time.Time) error { return w.SetDeadline(t) }
func (w lw) close() error               { return w.Close() }

type pw struct{ *PacketConn }

func (w pw) wait() error {
	_, _, err := w.ReadFrom(make([]byte, 64))
	return err
}
func (w pw) deadline(t time.Time) error { return w.SetReadDeadline(t) }
func (w pw) close() error               { return w.Close() }

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

// TestKeepAlive checks that accepted sockets have net.Listen's keep-alive
// by default and what SetKeepAlive says after.
func TestKeepAlive(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddFD("a", openSockets(t, inNS, unix.SOCK_STREAM, 28000, 1)[0])
	l.SetDeadline(time.Now().Add(30 * time.Second))
	accept := func() (on, idle int) {
		var cfd int
		if err := inNS(func() (err error) { cfd, err = dialFD(unix.SOCK_STREAM, 28000); return err }); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(cfd)
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rc, _ := c.(*Conn).SyscallConn()
		rc.Control(func(fd uintptr) {
			on, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			idle, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		})
		return on, idle
	}
	if on, idle := accept(); on != 1 || idle != 15 {
		t.Errorf("by default SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want net.Listen's 1, 15", on, idle)
	}
	l.SetKeepAlive(net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second})
	if on, idle := accept(); on != 1 || idle != 7 {
		t.Errorf("SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want 1, 7", on, idle)
	}
	l.SetKeepAlive(net.KeepAliveConfig{})
	if on, _ := accept(); on != 0 {
		t.Errorf("SO_KEEPALIVE %d after turning it off", on)
	}
}

// TestAcceptOutOfFiles runs out of descriptors while a connection waits,
// and checks that Accept neither fails (caddy-l4 would stop serving every
// member) nor spins, and returns the connection once descriptors are
// free again.
func TestAcceptOutOfFiles(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddFD("a", openSockets(t, inNS, unix.SOCK_STREAM, 29000, 1)[0])
	var cfd int
	if err := inNS(func() (err error) { cfd, err = dialFD(unix.SOCK_STREAM, 29000); return err }); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Lower the limit a little above the highest open descriptor, then
	// take every free number below it.
	low := lim
	es, _ := os.ReadDir("/proc/self/fd")
	for _, e := range es {
		var n uint64
		fmt.Sscan(e.Name(), &n)
		low.Cur = max(low.Cur, n+8)
	}
	low.Cur = min(low.Cur, lim.Cur)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var filler []int
	restored := false
	restore := func() {
		if !restored {
			restored = true
			for _, fd := range filler {
				unix.Close(fd)
			}
			unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
		}
	}
	defer restore()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EMFILE {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		filler = append(filler, fd)
	}

	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		res <- result{c, err}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case r := <-res:
		restore()
		t.Fatalf("Accept returned while out of descriptors: %v, %v", r.c, r.err)
	default:
	}
	errs := l.Stats("a").Errors.Load()
	restore()
	if errs == 0 {
		t.Error("no accept error counted while out of descriptors")
	}
	if errs > 100 {
		t.Errorf("%d accept attempts in 300 ms: spinning, not backing off", errs)
	}
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("no connection 30 s after descriptors were freed")
	}
}

// TestWakeShared has two callers wait on one Listener and one PacketConn
// (as the old and the new config do during a reload), calls Wake, and
// checks that both return ErrWoken, the one parked on the netpoller and
// the one queued behind it, and that the next call serves traffic.
func TestWakeShared(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddFD("t", openSockets(t, inNS, unix.SOCK_STREAM, 34000, 1)[0])
	pc, err := NewPacketConn(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.AddFD("u", openSockets(t, inNS, unix.SOCK_DGRAM, 34000, 1)[0])
	g0 := runtime.NumGoroutine()

	for _, w := range []waiter2{{"listener", lw{l}, l.Wake}, {"packetconn", pw{pc}, pc.Wake}} {
		errc := make(chan error, 2)
		for range 2 {
			go func() { errc <- w.w.wait() }()
		}
		time.Sleep(100 * time.Millisecond)
		w.wake()
		for range 2 {
			select {
			case err := <-errc:
				if !errors.Is(err, ErrWoken) {
					t.Errorf("%s: after Wake: %v, want ErrWoken", w.name, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: a waiter was not woken", w.name)
			}
		}
		// A call begun after Wake waits for traffic.
		go func() { errc <- w.w.wait() }()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-errc:
			t.Fatalf("%s: a call begun after Wake returned %v", w.name, err)
		default:
		}
		if err := inNS(func() error {
			typ := unix.SOCK_STREAM
			if w.name == "packetconn" {
				typ = unix.SOCK_DGRAM
			}
			fd, err := dialFD(typ, 34000)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			_, err = unix.Write(fd, []byte("x"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s: after Wake, serving: %v", w.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not served after Wake", w.name)
		}
	}
	if g := settle(g0); g > g0 {
		t.Errorf("goroutines: %d after, %d before", g, g0)
	}
}

type waiter2 struct {
	name string
	w    interface{ wait() error }
	wake func()
}
