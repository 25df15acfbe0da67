//go:build linux && !386

package sctpnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

// Dial creates a socket with socket (nil: in the current namespace) and
// connects it to address on network ("sctp", "sctp4" or "sctp6"; several
// hosts "a/b:port" for a multi-homed peer). The connect is non-blocking:
// Dial waits in the netpoller until the association is up, fails, or ctx
// is done. Nothing listening gives an error matching ECONNREFUSED.
func (cfg Config) Dial(ctx context.Context, socket SocketFunc, network, address string) (*Conn, error) {
	cfg = cfg.withDefaults()
	raddr, err := ResolveAddr(ctx, network, address)
	if err == nil && len(raddr.IPAddrs) == 0 {
		err = fmt.Errorf("%s address %q: missing host", network, address)
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err} }
	var laddr *sctp.SCTPAddr
	if cfg.LocalAddress != "" {
		if laddr, err = ResolveAddr(ctx, network, cfg.LocalAddress); err != nil {
			return nil, opErr(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}

	family, v6only := chooseFamily(network, raddr)
	fd, err := newSocket(socket, family)
	if err != nil {
		return nil, opErr(err)
	}
	if err := configure(fd, family, v6only, cfg); err != nil {
		unix.Close(fd)
		return nil, opErr(err)
	}
	if laddr != nil {
		if err := bindAddr(fd, family, laddr); err != nil {
			unix.Close(fd)
			return nil, opErr(err)
		}
	}
	if len(raddr.IPAddrs) == 1 {
		var sa unix.Sockaddr
		if sa, err = sockaddr(fd, family, raddr.IPAddrs[0], raddr.Port); err == nil {
			err = unix.Connect(fd, sa)
		}
	} else {
		err = connectx(fd, family, raddr)
	}
	switch {
	case err == nil, errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EINTR):
	default:
		unix.Close(fd)
		return nil, opErr(os.NewSyscallError("connect", err))
	}

	c, err := newConn(fd, raddr, cfg)
	if err != nil {
		return nil, opErr(err)
	}
	if err := c.waitConnected(ctx); err != nil {
		c.Close()
		return nil, opErr(err)
	}
	return c, nil
}

// waitConnected waits in the netpoller for a non-blocking connect to end.
func (c *Conn) waitConnected(ctx context.Context) error {
	if ctx.Done() != nil {
		woke := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			c.f.SetWriteDeadline(aLongTimeAgo)
			close(woke)
		})
		defer func() {
			if !stop() {
				<-woke
				c.f.SetWriteDeadline(time.Time{})
			}
		}()
	}
	var cerr error
	werr := c.rc.Write(func(fd uintptr) bool {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = os.NewSyscallError("getsockopt SO_ERROR", err)
			return true
		}
		switch e := unix.Errno(v); e {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		case 0:
			// No error yet is not the same as connected: check the peer.
			if _, err := unix.Getpeername(int(fd)); err == unix.ENOTCONN {
				return false
			}
			return true
		default:
			cerr = os.NewSyscallError("connect", e)
			return true
		}
	})
	if werr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return werr
	}
	return cerr
}
