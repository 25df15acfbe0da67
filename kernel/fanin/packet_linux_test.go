//go:build linux

package fanin

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpFixture is a PacketConn over members a (port base) and b (base+1) in
// a private namespace, and a client socket per member made there.
type udpFixture struct {
	c       *PacketConn
	clients map[string]int
}

func newUDPFixture(t *testing.T, base int) *udpFixture {
	needRoot(t)
	inNS := privateNetns(t)
	c, err := NewPacketConn(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fds := openSockets(t, inNS, unix.SOCK_DGRAM, base, 2)
	c.AddFD("a", fds[0])
	c.AddFD("b", fds[1])
	f := &udpFixture{c: c, clients: map[string]int{}}
	if err := inNS(func() error {
		for i, tag := range []string{"a", "b"} {
			fd, err := dialFD(unix.SOCK_DGRAM, base+i)
			if err != nil {
				return err
			}
			f.clients[tag] = fd
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, fd := range f.clients {
			unix.Close(fd)
		}
	})
	return f
}

func (f *udpFixture) send(t *testing.T, tag string, n int) {
	t.Helper()
	for range n {
		if _, err := unix.Write(f.clients[tag], []byte(tag)); err != nil {
			t.Fatal(err)
		}
	}
}

// read returns the tags of the datagrams read until none comes for a
// while.
func (f *udpFixture) read(t *testing.T) []string {
	t.Helper()
	var tags []string
	buf := make([]byte, 64)
	for {
		f.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := f.c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return tags
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := from.(*Addr).Tag(); got != string(buf[:n]) {
			t.Fatalf("datagram sent to %s tagged %v", buf[:n], got)
		}
		tags = append(tags, string(buf[:n]))
	}
}

// TestPacketRemove checks that datagrams waiting in a removed member's
// socket are not read, and that a reply to its address fails.
func TestPacketRemove(t *testing.T) {
	f := newUDPFixture(t, 31000)
	f.send(t, "a", 1)
	f.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, fromA, err := f.c.ReadFrom(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	f.send(t, "a", 5)
	f.send(t, "b", 1)
	if err := f.c.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if got := f.read(t); len(got) != 1 || got[0] != "b" {
		t.Errorf("after removing a, read %v; want [b]", got)
	}
	if _, err := f.c.WriteTo([]byte("x"), fromA); !errors.Is(err, net.ErrClosed) {
		t.Errorf("reply to a removed member: %v, want net.ErrClosed", err)
	}
	// Its label is free again.
	if err := f.c.AddFD(struct{ s string }{"a"}, openSockets(t, privateNetns(t), unix.SOCK_DGRAM, 31000, 1)[0]); err != nil {
		t.Errorf("re-adding a member labelled a: %v", err)
	}
}

// TestPacketFairness floods one member and checks that another member's
// datagram is not kept waiting behind the whole flood.
func TestPacketFairness(t *testing.T) {
	f := newUDPFixture(t, 32000)
	const flood = 200 // fits a default receive buffer
	f.send(t, "a", flood)
	f.send(t, "b", 1)
	got := f.read(t)
	if len(got) != flood+1 {
		t.Fatalf("read %d datagrams, want %d", len(got), flood+1)
	}
	for i, tag := range got {
		if tag == "b" {
			t.Logf("b's datagram read %d-th of %d", i+1, len(got))
			if i >= flood/2 {
				t.Errorf("b's datagram read %d-th, behind the flood (budget %d)", i+1, readBudget)
			}
			return
		}
	}
	t.Error("b's datagram never read")
}

// TestPacketICMPError checks that an ICMP error from an earlier reply (the
// client's port closed) on a socket with IP_RECVERR is skipped, not
// returned, that the next datagram arrives, and that the error does not
// leave the reader spinning on epoll.
func TestPacketICMPError(t *testing.T) {
	f := newUDPFixture(t, 33000)
	f.c.p.mu.Lock()
	for _, m := range f.c.p.byID {
		if err := unix.SetsockoptInt(m.fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
			t.Fatal(err)
		}
	}
	f.c.p.mu.Unlock()
	f.send(t, "a", 1)
	f.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, fromA, err := f.c.ReadFrom(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(f.clients["a"])
	delete(f.clients, "a")
	if _, err := f.c.WriteTo([]byte("to nobody"), fromA); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the port unreachable comes back
	f.send(t, "b", 1)
	if got := f.read(t); len(got) != 1 || got[0] != "b" {
		t.Errorf("read %v; want [b]", got)
	}
	if e := f.c.Stats("a").Errors.Load(); e == 0 {
		t.Error("member a counted no error for the ICMP unreachable")
	}
	w0 := epollWaits.Load()
	if got := f.read(t); len(got) != 0 { // 200 ms idle
		t.Errorf("read %v from nobody", got)
	}
	if w := epollWaits.Load() - w0; w > 20 {
		t.Errorf("%d epoll_wait calls in 200 ms without traffic: spinning", w)
	}
}

// TestPacketDualStack has an IPv6 member bound to [::]:35000 (dual-stack)
// and checks that an IPv4 client appears as IPv4, an IPv6 one as IPv6,
// and that both get their reply.
func TestPacketDualStack(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	c, err := NewPacketConn(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sfd, c4, c6 int
	if err := inNS(func() (err error) {
		if sfd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		unix.SetsockoptInt(sfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		if err := unix.Bind(sfd, &unix.SockaddrInet6{Port: 35000}); err != nil {
			return err
		}
		if c4, err = dialFD(unix.SOCK_DGRAM, 35000); err != nil {
			return err
		}
		if c6, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Connect(c6, &unix.SockaddrInet6{Port: 35000, Addr: [16]byte{15: 1}})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c4)
	defer unix.Close(c6)
	if err := c.AddFD("v6", sfd); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []int{c4, c6} {
		if _, err := unix.Write(cl, []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	seen := map[bool]bool{}
	buf := make([]byte, 64)
	for range 2 {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		ap := from.(*Addr).AddrPort
		if !ap.Addr().IsLoopback() || ap.Port() == 0 {
			t.Errorf("client address %s", ap)
		}
		seen[ap.Addr().Is4()] = true
		if _, err := c.WriteTo([]byte("re"), from); err != nil {
			t.Fatalf("reply to %s: %v", ap, err)
		}
	}
	if !seen[true] || !seen[false] {
		t.Errorf("saw IPv4 %v, IPv6 %v; want both", seen[true], seen[false])
	}
	for _, cl := range []int{c4, c6} {
		unix.SetsockoptTimeval(cl, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
		if n, err := unix.Read(cl, buf); err != nil || string(buf[:n]) != "re" {
			t.Errorf("client read %q, %v", buf[:n], err)
		}
	}
}
