package nsproxy

import (
	"io"
	"net"
	"testing"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/fanin"
)

// rawTCP finds the *net.TCPConn under a layer4 connection (so io.Copy can
// splice) and hands back the bytes matchers read but nobody consumed,
// draining them from the connection.
func TestRawTCPKeepsPrefetchedBytes(t *testing.T) {
	c, s := nstest.TCPPair(t)

	cx := layer4.WrapConnection(s, []byte("prefetched"), zap.NewNop())
	tc, pending, err := rawTCP(cx)
	if err != nil || tc != s || string(pending) != "prefetched" {
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

// A connection from a namespace set is a *fanin.Conn: rawTCP finds the
// *net.TCPConn in it, so the proxy still splices.
func TestRawTCPOfFanInConn(t *testing.T) {
	_, s := nstest.TCPPair(t)
	cx := layer4.WrapConnection(&fanin.Conn{TCPConn: s}, nil, zap.NewNop())
	tc, _, err := rawTCP(cx)
	if err != nil || tc != s {
		t.Fatalf("rawTCP of a *fanin.Conn: %v, %v; want its *net.TCPConn", tc, err)
	}
}
