package nsnetwork

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A stream handle's accepted connections have keep-alive off unless a
// config asks for it, and then what it asks for; through the listener's
// own ListenConfig (no system call per connection) and through the
// fallback that sets each connection after Accept.
func TestHandleKeepAlive(t *testing.T) {
	if _, ok := listenerConfig(); !ok {
		t.Error("*net.TCPListener has no field lc of type net.ListenConfig in this Go: every accepted connection now pays for setting its keep-alive; update listenConfigOf")
	}
	on := net.KeepAliveConfig{Enable: true, Idle: 42 * time.Second}
	for _, fallback := range []bool{false, true} {
		for _, tc := range []struct {
			lc   net.ListenConfig
			want int
		}{
			{net.ListenConfig{}, 0},                    // caddy-l4
			{net.ListenConfig{KeepAliveConfig: on}, 1}, // Caddy's HTTP servers
			{net.ListenConfig{KeepAlive: 42 * time.Second}, 1},
		} {
			l := fileListener(t)
			l.setKeepAlive(keepAliveOf(tc.lc))
			if fallback {
				// What happens where Go has no lc field.
				ka := keepAliveOf(tc.lc)
				*listenConfigOf(l.TCPListener) = net.ListenConfig{} // Go's default: on, 15 s
				l.keepAlive = &ka
			}
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if got := sockopt(t, a, unix.SOL_SOCKET, unix.SO_KEEPALIVE); got != tc.want {
				t.Errorf("fallback %v, %+v: SO_KEEPALIVE %d, want %d", fallback, tc.lc, got, tc.want)
			}
			if tc.want == 1 {
				if got := sockopt(t, a, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); got != 42 {
					t.Errorf("fallback %v, %+v: TCP_KEEPIDLE %d, want 42", fallback, tc.lc, got)
				}
			}
		}
	}
}

// fileListener is a stream handle as wrapStream makes it: a listener from
// a file, off by default.
func fileListener(t *testing.T) *tcpListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	p := &pooled{socket: &socket{file: f}}
	t.Cleanup(func() { f.Close() })
	h, err := wrapStream(p)
	if err != nil {
		t.Fatal(err)
	}
	l := h.(*tcpListener)
	l.release = func() {}
	t.Cleanup(func() { l.Close() })
	return l
}

func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) })
	if serr != nil {
		t.Fatal(os.NewSyscallError("getsockopt", serr))
	}
	return v
}
