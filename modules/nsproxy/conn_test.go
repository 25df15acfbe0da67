package nsproxy

import (
	"io"
	"net"
	"testing"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
)

// rawTCP finds the *net.TCPConn under a layer4 connection (so io.Copy can
// splice) and hands back the bytes matchers read but nobody consumed,
// draining them from the connection.
func TestRawTCPKeepsPrefetchedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	cx := layer4.WrapConnection(s, []byte("prefetched"), zap.NewNop())
	tc, pending, err := rawTCP(cx)
	if err != nil || tc != s.(*net.TCPConn) || string(pending) != "prefetched" {
		t.Fatalf("rawTCP: %v, %q, %v", tc, pending, err)
	}
	if len(cx.MatchingBytes()) != 0 {
		t.Fatalf("still buffered: %q", cx.MatchingBytes())
	}
	c.Write([]byte("next"))
	c.Close()
	rest, _ := io.ReadAll(cx)
	if string(rest) != "next" {
		t.Fatalf("then read %q", rest)
	}

	// Anything but a plain TCP conn goes through cx.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if tc, _, _ := rawTCP(layer4.WrapConnection(p1, nil, zap.NewNop())); tc != nil {
		t.Fatal("rawTCP of a pipe")
	}
}
