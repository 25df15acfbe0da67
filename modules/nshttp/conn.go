package nshttp

import (
	"net"
	"time"
)

// rwTimeoutConn applies Caddy's read_timeout and write_timeout to each
// read and write, as Caddy's own transport does.
type rwTimeoutConn struct {
	*net.TCPConn
	read, write time.Duration
}

func (c *rwTimeoutConn) Read(b []byte) (int, error) {
	if c.read > 0 {
		_ = c.TCPConn.SetReadDeadline(time.Now().Add(c.read))
	}
	return c.TCPConn.Read(b)
}

func (c *rwTimeoutConn) Write(b []byte) (int, error) {
	if c.write > 0 {
		_ = c.TCPConn.SetWriteDeadline(time.Now().Add(c.write))
	}
	return c.TCPConn.Write(b)
}
