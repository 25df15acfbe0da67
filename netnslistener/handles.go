package netnslistener

import (
	"net"
	"os"
	"sync"
)

// Handles returned to Caddy apps embed the concrete *net.TCPListener or
// *net.UDPConn, so interface assertions (deadlines, SyscallConn, UDP
// messages) keep working; only Close is changed, to return the handle's
// reference to the pool. Close is idempotent: a handle is also closed when
// the config that opened it ends, and the app's own Close after that must
// not report an error.

type tcpListener struct {
	*net.TCPListener
	closeOnce sync.Once
	release   func()
}

func (l *tcpListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.TCPListener.Close()
		l.release()
	})
	return err
}

type udpConn struct {
	*net.UDPConn
	closeOnce sync.Once
	release   func()
}

func (c *udpConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.UDPConn.Close()
		c.release()
	})
	return err
}

// wrapStream makes a new listener handle on the shared socket f.
func wrapStream(f *os.File, release func()) (any, error) {
	ln, err := net.FileListener(f) // duplicates the descriptor
	if err != nil {
		return nil, err
	}
	return &tcpListener{TCPListener: ln.(*net.TCPListener), release: release}, nil
}

// wrapPacket makes a new packet conn handle on the shared socket f.
func wrapPacket(f *os.File, release func()) (any, error) {
	pc, err := net.FilePacketConn(f) // duplicates the descriptor
	if err != nil {
		return nil, err
	}
	return &udpConn{UDPConn: pc.(*net.UDPConn), release: release}, nil
}

var (
	_ net.Listener   = (*tcpListener)(nil)
	_ net.PacketConn = (*udpConn)(nil)
)
