package nsenter_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// etherTest is the IEEE local experimental EtherType: no stack answers it.
const etherTest = 0x88b5

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// A real AF_PACKET SOCK_RAW socket, as the program this plugin replaces
// held in every namespace next to its TCP, UDP and SCTP ones, opened with
// the public API: it belongs to the namespace (SIOCGSKNS), resolves
// interface names there, and sees a frame sent from the other end of that
// namespace's veth.
func TestPacketSocketInNamespace(t *testing.T) {
	nstest.Require(t)
	names := nstest.Add(t, 2)
	a, b := open(t, names[0]), open(t, names[1])
	ifA := fmt.Sprintf("nlpa%d", os.Getpid()%100000)
	ifB := fmt.Sprintf("nlpb%d", os.Getpid()%100000)
	nstest.Run(t, "ip", "link", "add", ifA, "netns", names[0], "type", "veth", "peer", "name", ifB, "netns", names[1])
	nstest.Run(t, "ip", "-n", names[0], "link", "set", ifA, "up")
	nstest.Run(t, "ip", "-n", names[1], "link", "set", ifB, "up")

	// The receiving socket, in a, bound to a's end of the veth.
	fa, err := nsenter.SocketFile(a, unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	own, err := nsenter.Current()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nsenter.SocketID(fa); err != nil || got != a.ID || got == own {
		t.Fatalf("packet socket in %v, %v; want %v (our own is %v)", got, err, a.ID, own)
	}
	flags, err := unix.FcntlInt(fa.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("packet socket is not close-on-exec: flags %#x, %v", flags, err)
	}
	idxA, err := nsenter.InterfaceIndex(fa, ifA)
	if err != nil {
		t.Fatal(err)
	}
	bindLink(t, fa, unix.ETH_P_ALL, idxA)

	// The name is looked up where the socket is: a packet socket in our
	// own namespace does not find a's interface.
	fo, err := nsenter.SocketFile(nil, unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nsenter.InterfaceIndex(fo, ifA); !errors.Is(err, unix.ENODEV) {
		t.Errorf("interface %s looked up from our own namespace: %v, want no such device", ifA, err)
	}
	fo.Close()

	// The sender, in b, on b's end of the veth.
	fb, err := nsenter.SocketFile(b, unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	idxB, err := nsenter.InterfaceIndex(fb, ifB)
	if err != nil {
		t.Fatal(err)
	}
	bindLink(t, fb, etherTest, idxB)
	token := fmt.Appendf(nil, "caddy-netns packet test %d %d", os.Getpid(), time.Now().UnixNano())
	frame := make([]byte, 14, 64)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(frame[12:], etherTest)
	frame = append(frame, token...)

	// Send every 100 ms (the veth may take a moment to get its carrier)
	// until a sees the frame, for at most 10 s.
	seen := make(chan error, 1)
	go func() { seen <- readFrame(fa, idxA, token, time.Now().Add(10*time.Second)) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		if _, err := fb.Write(frame); err != nil {
			t.Fatalf("sending a frame on %s in %s: %v", ifB, b, err)
		}
		sent++
		select {
		case err := <-seen:
			if err != nil {
				t.Fatalf("packet socket in %s, after %d frames sent from %s: %v", a, sent, b, err)
			}
			t.Logf("packet socket in %s saw the frame after %d sent", a, sent)
			return
		case <-tick.C:
		}
	}
}

func bindLink(t *testing.T, f *os.File, proto uint16, ifindex int) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var berr error
	rc.Control(func(fd uintptr) {
		berr = unix.Bind(int(fd), &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex})
	})
	if berr != nil {
		t.Fatalf("binding the packet socket to interface %d: %v", ifindex, berr)
	}
}

// readFrame reads frames from the packet socket f until one carries token
// on interface ifindex, or the deadline passes. Other frames (IPv6
// neighbour discovery after the link comes up) are skipped.
func readFrame(f *os.File, ifindex int, token []byte, deadline time.Time) error {
	if err := f.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("the packet socket is not on the netpoller: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 2048)
	others := 0
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("no frame with the token (%d others seen): %w", others, err)
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		if n >= 14 && binary.BigEndian.Uint16(buf[12:]) == etherTest && bytes.Contains(buf[14:n], token) {
			if ll == nil || ll.Ifindex != ifindex || ll.Protocol != htons(etherTest) {
				return fmt.Errorf("frame came from %+v, want interface %d, protocol %#x", from, ifindex, etherTest)
			}
			return nil
		}
		others++
	}
}
