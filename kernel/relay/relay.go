// Package relay copies between two connections in both directions, the way
// a layer 4 proxy needs, and knows nothing of Caddy.
//
// When both connections are *net.TCPConn, a direction moves small chunks
// with read(2)/write(2) through a pooled buffer and, once a read fills
// BulkThreshold bytes, the rest with splice(2) in the kernel: no
// user-space buffer, no copy. Wrapping either connection (even in a struct
// that embeds it) loses that path, so callers should unwrap down to the
// *net.TCPConn before calling Pipe.
package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Result tells what a Pipe moved.
type Result struct {
	// Up is the number of bytes copied from down to up (client to
	// upstream), Down the number copied from up to down.
	Up, Down int64
	// Err is the first error of either direction that was not caused by
	// Pipe itself closing a connection, nil when both ended with EOF.
	Err error
}

// Pipe copies down→up and up→down until both directions have ended, and
// returns when they have. The first direction that reads EOF shuts down the
// writing side of its destination (CloseWrite) so a half-close is passed
// on; a destination that cannot half-close (UDP) is closed. The second
// one leaves its destination alone: both connections are finished then,
// and the caller's Close sends the FIN. A direction
// that fails closes both connections, so the other one ends too. Pipe
// does not close the connections otherwise; the caller does.
func Pipe(down, up net.Conn) Result {
	// One allocation for the whole pipe: its state, and the second
	// direction's goroutine started on a method (no closure).
	p := &pipe{down: down, up: up}
	p.wg.Add(1)
	go p.downward()
	n, err := copyConn(up, down)
	p.r.Up = n
	if err != nil {
		p.fail(err)
	} else {
		p.done(up)
	}
	p.wg.Wait()
	return p.r
}

// pipe is the state of one Pipe.
type pipe struct {
	down, up net.Conn
	r        Result
	closing  atomic.Bool
	once     sync.Once
	errMu    sync.Mutex
	ended    atomic.Int32 // directions that read EOF
	wg       sync.WaitGroup
}

// downward copies up→down.
func (p *pipe) downward() {
	defer p.wg.Done()
	n, err := copyConn(p.down, p.up)
	p.r.Down = n
	if err != nil {
		p.fail(err)
		return
	}
	p.done(p.down)
}

// fail records err, unless Pipe caused it by closing, and closes both
// connections so the other direction ends too.
func (p *pipe) fail(err error) {
	if p.closing.Load() && errors.Is(err, net.ErrClosed) {
		return // we closed it
	}
	p.errMu.Lock()
	if p.r.Err == nil {
		p.r.Err = err
	}
	p.errMu.Unlock()
	p.once.Do(p.closeBoth)
}

func (p *pipe) closeBoth() {
	p.closing.Store(true)
	_ = p.down.Close()
	_ = p.up.Close()
}

// done passes on the end of a direction: the first one to end shuts down
// the writing side of its destination, or closes it if it cannot
// half-close.
func (p *pipe) done(dst net.Conn) {
	if p.ended.Add(1) == 2 {
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err == nil {
			return
		}
	}
	p.closing.Store(true)
	_ = dst.Close()
}

// copyConn copies src to dst until EOF, with copyTCP between TCP
// connections.
func copyConn(dst, src net.Conn) (int64, error) {
	d, ok1 := dst.(*net.TCPConn)
	s, ok2 := src.(*net.TCPConn)
	if ok1 && ok2 {
		return copyTCP(d, s)
	}
	return io.Copy(dst, src)
}
