//go:build !linux || 386

package sctpnet

import (
	"context"
	"net"
)

// Listen is not supported on this platform.
func (cfg Config) Listen(ctx context.Context, socket SocketFunc, network, address string) (*Listener, error) {
	return nil, &net.OpError{Op: "listen", Net: network, Err: ErrNotSupported}
}

// Dial is not supported on this platform.
func (cfg Config) Dial(ctx context.Context, socket SocketFunc, network, address string) (*Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: ErrNotSupported}
}

// Accept is not supported on this platform.
func (l *Listener) Accept() (net.Conn, error) { return nil, ErrNotSupported }

// AcceptConn is not supported on this platform.
func (l *Listener) AcceptConn(ctx context.Context) (*Conn, error) { return nil, ErrNotSupported }

// LocalAddr is not supported on this platform.
func (c *Conn) LocalAddr() net.Addr { return nil }

// ReadMsg is not supported on this platform.
func (c *Conn) ReadMsg(b []byte) (n int, info Info, flags int, err error) {
	return 0, Info{}, 0, ErrNotSupported
}

// ReadMessage is not supported on this platform.
func (c *Conn) ReadMessage(buf []byte) ([]byte, Info, error) { return buf[:0], Info{}, ErrNotSupported }

// WriteMsg is not supported on this platform.
func (c *Conn) WriteMsg(p []byte, info Info) (int, error) { return 0, ErrNotSupported }

// Shutdown is not supported on this platform.
func (c *Conn) Shutdown() error { return ErrNotSupported }

// Abort is not supported on this platform.
func (c *Conn) Abort() error { return ErrNotSupported }

// Streams is not supported on this platform.
func (c *Conn) Streams() (in, out uint16, err error) { return 0, 0, ErrNotSupported }

// ReadMessagePieces is not supported on this platform.
func (c *Conn) ReadMessagePieces(p [][]byte) ([][]byte, Info, error) {
	return p[:0], Info{}, ErrNotSupported
}

// WriteMsgBuffers is not supported on this platform.
func (c *Conn) WriteMsgBuffers(bufs [][]byte, info Info) (int, error) { return 0, ErrNotSupported }

// MaxMessageSize returns the configured limit.
func (c *Conn) MaxMessageSize() int { return int(c.max.Load()) }

// SetMaxMessageSize is not supported on this platform.
func (c *Conn) SetMaxMessageSize(n int) error { return ErrNotSupported }

// Tune is not supported on this platform.
func (c *Conn) Tune(t Tuning) error { return ErrNotSupported }

// SetNoDelay is not supported on this platform.
func (c *Conn) SetNoDelay(on bool) error { return ErrNotSupported }

// SetWriteBuffer is not supported on this platform.
func (c *Conn) SetWriteBuffer(n int) error { return ErrNotSupported }

// Unread holds p for the next read.
func (c *Conn) Unread(p [][]byte, info Info) { c.held, c.heldInf = p, info }
