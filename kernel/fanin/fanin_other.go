//go:build !linux

package fanin

import (
	"net"
	"os"
	"time"
)

// Listener is one net.Listener over many listening TCP sockets (Linux
// only).
type Listener struct{}

// NewListener returns ErrUnsupported.
func NewListener(net.Addr) (*Listener, error) { return nil, ErrUnsupported }

func (*Listener) AddFD(any, int) error                     { return ErrUnsupported }
func (*Listener) AddFile(any, *os.File) error              { return ErrUnsupported }
func (*Listener) SetKeepAlive(net.KeepAliveConfig)         {}
func (*Listener) Remove(any) error                         { return ErrUnsupported }
func (*Listener) Wake()                                    {}
func (*Listener) Len() int                                 { return 0 }
func (*Listener) Stats(any) *Stats                         { return nil }
func (*Listener) Accept() (net.Conn, error)                { return nil, ErrUnsupported }
func (*Listener) AcceptTagged() (*net.TCPConn, any, error) { return nil, nil, ErrUnsupported }
func (*Listener) Close() error                             { return ErrUnsupported }
func (*Listener) Addr() net.Addr                           { return nil }
func (*Listener) SetDeadline(time.Time) error              { return ErrUnsupported }

// PacketConn is one net.PacketConn over many UDP sockets (Linux only).
type PacketConn struct{}

// NewPacketConn returns ErrUnsupported.
func NewPacketConn(net.Addr) (*PacketConn, error) { return nil, ErrUnsupported }

func (*PacketConn) AddFD(any, int) error                   { return ErrUnsupported }
func (*PacketConn) AddFile(any, *os.File) error            { return ErrUnsupported }
func (*PacketConn) Remove(any) error                       { return ErrUnsupported }
func (*PacketConn) Wake()                                  {}
func (*PacketConn) Len() int                               { return 0 }
func (*PacketConn) Stats(any) *Stats                       { return nil }
func (*PacketConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, ErrUnsupported }
func (*PacketConn) WriteTo([]byte, net.Addr) (int, error)  { return 0, ErrUnsupported }
func (*PacketConn) Close() error                           { return ErrUnsupported }
func (*PacketConn) LocalAddr() net.Addr                    { return nil }
func (*PacketConn) SetDeadline(time.Time) error            { return ErrUnsupported }
func (*PacketConn) SetReadDeadline(time.Time) error        { return ErrUnsupported }
func (*PacketConn) SetWriteDeadline(time.Time) error       { return ErrUnsupported }

var (
	_ net.Listener   = (*Listener)(nil)
	_ net.PacketConn = (*PacketConn)(nil)
)
