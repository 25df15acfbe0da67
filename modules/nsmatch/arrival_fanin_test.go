//go:build linux

package nsmatch

import (
	"net"
	"testing"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/fanin"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// fakeMember stands for a set member: the tag of a fan-in socket that
// knows its namespace.
type fakeMember struct{ id nsenter.ID }

func (m fakeMember) NetnsID() nsenter.ID { return m.id }
func (m fakeMember) String() string      { return "fake" }

// A connection or datagram from a namespace set names its namespace
// through the fan-in member's tag, not through the kernel (SIOCGSKNS): the
// tag here names a namespace the socket is not in, and that is what Of
// reports.
func TestArrivalFromFanInTag(t *testing.T) {
	tag := fakeMember{nsenter.ID{Dev: 1, Ino: 4242}}

	ln, err := fanin.NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := plain.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.AddFile(tag, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	plain.Close()
	c, err := net.Dial("tcp", plain.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := Of(layer4.WrapConnection(s, nil, zap.NewNop()))
	if err != nil || a.ID != tag.id {
		t.Fatalf("arrival of a fan-in connection: %v, %v; want the tag's namespace %v", a.ID, err, tag.id)
	}

	pc, err := fanin.NewPacketConn(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uf, _ := u.(*net.UDPConn).File()
	if err := pc.AddFile(tag, uf); err != nil {
		t.Fatal(err)
	}
	uf.Close()
	to := u.LocalAddr().String()
	u.Close()
	cu, err := net.Dial("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	defer cu.Close()
	cu.Write([]byte("x"))
	buf := make([]byte, 16)
	_, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := from.(*fanin.Addr); !ok {
		t.Fatalf("ReadFrom gave a %T", from)
	}
	if id, ok := memberID(from); !ok || id != tag.id {
		t.Fatalf("arrival of a fan-in datagram: %v %v; want %v", id, ok, tag.id)
	}
}
