package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// BulkThreshold is the read size at which a direction counts as bulk: once
// one read(2) returns this many bytes, the rest of that direction is
// spliced. Until then each chunk is copied through a pooled buffer, which
// costs fewer and cheaper system calls than splice(2) for small messages
// (splice moves every chunk through a pipe: two calls, page references).
// HAProxy's splice-auto makes the same choice.
const BulkThreshold = 16 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, BulkThreshold); return &b }}

// copyTCP copies src to dst until EOF: small chunks with read(2)/write(2),
// everything after the first full buffer with io.Copy (splice(2)). A
// buffer is taken from the pool only once src is readable, so an idle
// connection holds none.
func copyTCP(dst, src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	var total int64
	for {
		var (
			bp   *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			bp = bufs.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *bp)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				bufs.Put(bp)
				bp = nil
				return false // wait until readable
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if n < 0 {
			n = 0
		}
		var werr error
		if n > 0 {
			var w int
			w, werr = dst.Write((*bp)[:n])
			total += int64(w)
		}
		if bp != nil {
			bufs.Put(bp)
		}
		switch {
		case werr != nil:
			return total, werr
		case err != nil:
			return total, readErr(err)
		case n == 0:
			return total, nil // EOF
		case n == BulkThreshold:
			m, err := io.Copy(dst, src)
			return total + m, err
		}
	}
}

// readErr turns an errno from read(2) into what (*net.TCPConn).Read would
// report.
func readErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return &net.OpError{Op: "read", Net: "tcp", Err: errno}
	}
	return err
}
