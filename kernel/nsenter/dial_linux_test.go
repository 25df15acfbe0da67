//go:build linux

package nsenter_test

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// A dialed TCP connection has keep-alive off unless the Dialer asks for
// it, in the namespace and from the caller's own; the socket is the one
// created in the namespace.
func TestDialKeepAlive(t *testing.T) {
	nstest.Require(t)
	ns := open(t, nstest.Add(t, 1)[0])
	for _, n := range []*nsenter.Namespace{ns, nil} {
		ln, err := nsenter.Listen(n, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		for _, tc := range []struct {
			d    nsenter.Dialer
			want int
			idle time.Duration
		}{
			{nsenter.Dialer{}, 0, 0},
			{nsenter.Dialer{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 42 * time.Second}}, 1, 42 * time.Second},
		} {
			c, err := tc.d.Dial(context.Background(), n, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if n != nil {
				if got := socketNS(t, c.(syscall.Conn)); got != n.ID {
					t.Fatalf("dialed socket in %v, want %v", got, n.ID)
				}
			}
			if got := sockopt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE); got != tc.want {
				t.Errorf("namespace %v, %+v: SO_KEEPALIVE %d, want %d", n, tc.d, got, tc.want)
			}
			if tc.idle > 0 {
				if got := sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); got != int(tc.idle/time.Second) {
					t.Errorf("TCP_KEEPIDLE %d, want %d", got, tc.idle/time.Second)
				}
			}
			if got := sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_NODELAY); got != 1 {
				t.Errorf("TCP_NODELAY %d, want 1", got)
			}
		}
	}
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
		t.Fatal(serr)
	}
	return v
}

// Dialer.LocalAddr binds the socket made in the namespace, so an address
// that exists only there can be the source, over TCP and UDP; from the
// caller's namespace the same bind fails.
func TestDialLocalAddr(t *testing.T) {
	nstest.Require(t)
	name := nstest.Add(t, 1)[0]
	nstest.Run(t, "ip", "-n", name, "addr", "add", "10.213.1.7/32", "dev", "lo")
	ns := open(t, name)
	ln, err := nsenter.Listen(ns, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	local := &net.TCPAddr{IP: net.IPv4(10, 213, 1, 7)}
	c, err := nsenter.Dialer{LocalAddr: local}.Dial(context.Background(), ns, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial from %s in the namespace: %v", local, err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP; !got.Equal(local.IP) {
		t.Fatalf("source %s, want %s", got, local.IP)
	}
	uc, err := nsenter.Dialer{LocalAddr: &net.UDPAddr{IP: local.IP, Port: 40123}}.Dial(context.Background(), ns, "udp", "127.0.0.1:9")
	if err != nil {
		t.Fatalf("UDP dial from %s:40123 in the namespace: %v", local.IP, err)
	}
	defer uc.Close()
	if got := uc.LocalAddr().String(); got != "10.213.1.7:40123" {
		t.Fatalf("UDP source %s, want 10.213.1.7:40123", got)
	}
	c2, err := (nsenter.Dialer{LocalAddr: local}).Dial(context.Background(), nil, "tcp", ln.Addr().String())
	if err == nil {
		c2.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("from the caller's namespace, where %s does not exist: %v; want the bind to fail", local.IP, err)
	}
}
