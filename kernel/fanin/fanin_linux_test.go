//go:build linux

package fanin

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nsCount is how many namespaces the namespace tests make
// (FANIN_NAMESPACES overrides it).
func nsCount(t testing.TB) int {
	if s := os.Getenv("FANIN_NAMESPACES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FANIN_NAMESPACES=%q: want a positive number", s)
		}
		return n
	}
	return 100
}

// TestListenerNamespaces listens on 127.0.0.1:8000 in many namespaces
// through one Listener, connects from inside each, and checks that every
// connection arrives tagged with the namespace it was made in, on O(1)
// goroutines and threads.
func TestListenerNamespaces(t *testing.T) {
	needRoot(t)
	n := nsCount(t)
	const port = 8000
	g0, fd0 := runtime.NumGoroutine(), fdCount(t)

	fds := make([]int, n)
	nss := newNetns(t, n, func(i int) (err error) {
		fds[i], err = socketFD(unix.SOCK_STREAM, port)
		return err
	})
	l, err := NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, fd := range fds {
		if err := l.AddFD(i, fd); err != nil {
			t.Fatal(err)
		}
	}

	// One client per namespace, made inside it; each sends its index.
	clients := make([]net.Conn, n)
	if err := in(nss, func(i int) error {
		fd, err := dialFD(unix.SOCK_STREAM, port)
		if err != nil {
			return err
		}
		clients[i] = fileConn(t, fd)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if err := binary.Write(c, binary.BigEndian, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}

	l.SetDeadline(time.Now().Add(30 * time.Second))
	seen := make([]bool, n)
	for range n {
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		fc, ok := c.(*Conn)
		if !ok {
			t.Fatalf("Accept returned %T, want *fanin.Conn", c)
		}
		tag, ok := fc.Tag().(int)
		if !ok || tag < 0 || tag >= n {
			t.Fatalf("tag %v (%T) is not a member", fc.Tag(), fc.Tag())
		}
		var sent uint32
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := binary.Read(c, binary.BigEndian, &sent); err != nil {
			t.Fatal(err)
		}
		if int(sent) != tag {
			t.Errorf("connection made in namespace %d arrived tagged %d", sent, tag)
		}
		if seen[tag] {
			t.Errorf("two connections tagged %d", tag)
		}
		seen[tag] = true
		if got := c.LocalAddr().String(); got != "127.0.0.1:8000" {
			t.Errorf("local address %s, want 127.0.0.1:8000", got)
		}
		// The reply goes back through the bare *net.TCPConn (the splice
		// path: io.Copy from a *net.TCPConn).
		if _, err := fc.NetConn().(*net.TCPConn).Write([]byte{byte(tag)}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i, c := range clients {
		b, err := io.ReadAll(c)
		if err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Errorf("client %d read %v, %v; want [%d]", i, b, err, byte(i))
		}
		c.Close()
	}

	g := runtime.NumGoroutine()
	t.Logf("fanin: %d namespaces: goroutines %d (before %d), threads %d", n, g, g0, procStatus(t, "Threads"))
	if g > g0+2 {
		t.Errorf("goroutines: %d with %d members, %d before: not O(1)", g, n, g0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fd := fdCount(t); fd > fd0+n { // the namespaces' own fds remain until cleanup
		t.Errorf("fds: %d after Close, %d before (+%d namespace handles)", fd, fd0, n)
	}
}

// TestPacketConnNamespaces binds 127.0.0.1:5353 in many namespaces through
// one PacketConn, sends from inside each, and checks that each datagram is
// tagged with its namespace and that the reply leaves from the same one.
func TestPacketConnNamespaces(t *testing.T) {
	needRoot(t)
	n := nsCount(t)
	const port = 5353
	g0 := runtime.NumGoroutine()

	fds := make([]int, n)
	nss := newNetns(t, n, func(i int) (err error) {
		fds[i], err = socketFD(unix.SOCK_DGRAM, port)
		return err
	})
	c, err := NewPacketConn(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, fd := range fds {
		if err := c.AddFD("ns"+strconv.Itoa(i), fd); err != nil {
			t.Fatal(err)
		}
	}
	// Every client binds the same port, so the client addresses are
	// equal in every namespace: only the member tells them apart.
	clients := make([]net.Conn, n)
	if err := in(nss, func(i int) error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 40000, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			unix.Close(fd)
			return err
		}
		clients[i] = fileConn(t, fd)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, cl := range clients {
		if _, err := cl.Write([]byte("ns" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	strs := map[string]bool{}
	buf := make([]byte, 1500)
	for range n {
		k, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		a, ok := from.(*Addr)
		if !ok {
			t.Fatalf("ReadFrom returned a %T, want *fanin.Addr", from)
		}
		if got := string(buf[:k]); got != a.Tag() {
			t.Errorf("datagram sent in %s arrived tagged %v", got, a.Tag())
		}
		if a.AddrPort.String() != "127.0.0.1:40000" {
			t.Errorf("client address %s, want 127.0.0.1:40000", a.AddrPort)
		}
		if strs[a.String()] {
			t.Errorf("two members give the address string %s", a)
		}
		strs[a.String()] = true
		if _, err := c.WriteTo([]byte("re:"+a.Tag().(string)), from); err != nil {
			t.Fatal(err)
		}
	}
	for i, cl := range clients {
		cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := cl.Read(buf)
		if want := "re:ns" + strconv.Itoa(i); err != nil || string(buf[:k]) != want {
			t.Errorf("client %d read %q, %v; want %q", i, buf[:k], err, want)
		}
		cl.Close()
	}
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Errorf("goroutines: %d with %d members, %d before: not O(1)", g, n, g0)
	}
	// An address from elsewhere is refused, naming the reason.
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}); !errors.Is(err, ErrNotMemberAddr) {
		t.Errorf("WriteTo a *net.UDPAddr: %v, want ErrNotMemberAddr", err)
	}
}

// privateNetns makes one namespace for tests that need many sockets on
// loopback without touching the host's ports, and returns a function that
// runs fn inside it on a locked thread.
func privateNetns(t testing.TB) func(fn func() error) error {
	nss := newNetns(t, 1, nil)
	return func(fn func() error) error { return in(nss, func(int) error { return fn() }) }
}

// openSockets makes n sockets of typ on 127.0.0.1 ports base, base+1, ...
func openSockets(t testing.TB, inNS func(func() error) error, typ, base, n int) []int {
	t.Helper()
	fds := make([]int, 0, n)
	err := inNS(func() error {
		for i := range n {
			fd, err := socketFD(typ, base+i)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		t.Fatal(err)
	}
	return fds
}

// TestGoroutinesFlat checks that a Listener and a PacketConn with 1000
// members run on as many goroutines and threads as with one, serve a
// connection or datagram on the last member, and leave no fd behind.
func TestGoroutinesFlat(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	fd0 := fdCount(t)
	measure := func(n int) (goroutines, threads int) {
		l, err := NewListener(nil)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := NewPacketConn(nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, fd := range openSockets(t, inNS, unix.SOCK_STREAM, 20000, n) {
			if err := l.AddFD(i, fd); err != nil {
				t.Fatal(err)
			}
		}
		for i, fd := range openSockets(t, inNS, unix.SOCK_DGRAM, 20000, n) {
			if err := pc.AddFD(i, fd); err != nil {
				t.Fatal(err)
			}
		}
		// Park one Accept and one ReadFrom, as a server would.
		done := make(chan error, 2)
		go func() {
			c, err := l.Accept()
			if err == nil {
				if tag := c.(*Conn).Tag(); tag != n-1 {
					err = errors.New("connection tagged " + strconv.Itoa(tag.(int)))
				}
				c.Close()
			}
			done <- err
		}()
		go func() {
			buf := make([]byte, 64)
			_, from, err := pc.ReadFrom(buf)
			if err == nil && from.(*Addr).Tag() != n-1 {
				err = errors.New("datagram tagged " + from.String())
			}
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		goroutines, threads = runtime.NumGoroutine(), procStatus(t, "Threads")
		if err := inNS(func() error {
			fd, err := dialFD(unix.SOCK_STREAM, 20000+n-1)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ufd, err := dialFD(unix.SOCK_DGRAM, 20000+n-1)
			if err != nil {
				return err
			}
			defer unix.Close(ufd)
			_, err = unix.Write(ufd, []byte("x"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no connection or datagram in 30 s")
			}
		}
		l.Close()
		pc.Close()
		return goroutines, threads
	}
	g1, th1 := measure(1)
	g1000, th1000 := measure(1000)
	t.Logf("fanin: goroutines %d at 1 member, %d at 1000; threads %d, %d", g1, g1000, th1, th1000)
	if g1000 > g1+1 {
		t.Errorf("goroutines: %d at 1000 members, %d at 1", g1000, g1)
	}
	if th1000 > th1+2 {
		t.Errorf("threads: %d at 1000 members, %d at 1", th1000, th1)
	}
	if fd := fdCount(t); fd != fd0 {
		t.Errorf("fds: %d after closing, %d before", fd, fd0)
	}
}
