//go:build linux

package fanin

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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
