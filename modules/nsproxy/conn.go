package nsproxy

import (
	"errors"
	"io"
	"net"

	"github.com/mholt/caddy-l4/layer4"

	"github.com/caddy-netns/caddy-netns/kernel/fanin"
)

// rawTCP returns the *net.TCPConn directly under cx, and the bytes that
// matchers already read from it and that the handler has not consumed yet
// (they must reach the upstream first). It returns nil when cx is not a
// plain TCP connection (TLS terminated, a UDP flow, another wrapper): then
// the bytes go through cx.
func rawTCP(cx *layer4.Connection) (*net.TCPConn, []byte, error) {
	var tc *net.TCPConn
	switch c := cx.Conn.(type) {
	case *net.TCPConn:
		tc = c
	case *fanin.Conn: // from a namespace set: the socket is its TCPConn
		tc = c.TCPConn
	default:
		return nil, nil, nil
	}
	pending := cx.MatchingBytes()
	if len(pending) == 0 {
		return tc, nil, nil
	}
	// Consume them through cx so its buffer is drained; with exactly this
	// many bytes asked for, Read only copies from the buffer.
	buf := make([]byte, len(pending))
	if _, err := io.ReadFull(cx, buf); err != nil {
		return nil, nil, err
	}
	return tc, buf, nil
}

// downConn lets relay half-close a layer4 connection it copies through.
type downConn struct{ *layer4.Connection }

func (c downConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
