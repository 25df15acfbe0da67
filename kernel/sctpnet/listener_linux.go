//go:build linux && !386

package sctpnet

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Listen creates a socket with socket (nil: in the current namespace),
// binds it to address on network ("sctp", "sctp4" or "sctp6"; port 0 picks
// one) and listens. ctx bounds host name resolution only.
func (cfg Config) Listen(ctx context.Context, socket SocketFunc, network, address string) (*Listener, error) {
	cfg = cfg.withDefaults()
	laddr, err := ResolveAddr(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	family, v6only := chooseFamily(network, laddr)
	fd, err := newSocket(socket, family)
	if err != nil && family == unix.AF_INET6 && network == "sctp" && len(laddr.IPAddrs) == 0 &&
		errors.Is(err, unix.EAFNOSUPPORT) {
		family = unix.AF_INET // no IPv6 in this namespace: the wildcard is IPv4's
		fd, err = newSocket(socket, family)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
	}
	fail := func(err error) (*Listener, error) {
		unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
	}
	if err := configure(fd, family, v6only, cfg); err != nil {
		return fail(err)
	}
	if err := bindAddr(fd, family, laddr); err != nil {
		return fail(err)
	}
	if err := unix.Listen(fd, cfg.Backlog); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	port, err := localPort(fd)
	if err != nil {
		return fail(err)
	}
	addr := *laddr
	addr.Port = port
	if len(addr.IPAddrs) == 0 {
		any := net.IPv4zero
		if family == unix.AF_INET6 {
			any = net.IPv6unspecified
		}
		addr.IPAddrs = []net.IPAddr{{IP: any}}
	}
	f := os.NewFile(uintptr(fd), "sctp-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
	}
	return &Listener{f: f, rc: rc, addr: &addr, cfg: cfg}, nil
}

// Accept waits for the next association; it implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptConn(context.Background())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// aLongTimeAgo is a deadline in the past, to wake a waiting call.
var aLongTimeAgo = time.Unix(1, 0)

// AcceptConn waits in the netpoller for the next association, until ctx
// is done or the listener is closed. Cancelling ctx works through the
// listener's deadline, so it also wakes other Accepts running at the time
// (they return os.ErrDeadlineExceeded) and clears a deadline set with
// SetDeadline.
func (l *Listener) AcceptConn(ctx context.Context) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.opErr(err)
	}
	if ctx.Done() != nil {
		woke := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			l.f.SetReadDeadline(aLongTimeAgo)
			close(woke)
		})
		defer func() {
			if !stop() {
				<-woke
				l.f.SetReadDeadline(time.Time{})
			}
		}()
	}
	var nfd int
	var sa unix.Sockaddr
	var err error
	rerr := l.rc.Read(func(fd uintptr) bool {
		for {
			nfd, sa, err = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			switch err {
			case unix.EINTR, unix.ECONNABORTED:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if rerr != nil {
		if ctx.Err() != nil {
			rerr = ctx.Err()
		}
		return nil, l.opErr(rerr)
	}
	if err != nil {
		return nil, l.opErr(os.NewSyscallError("accept4", err))
	}
	// Accepted sockets inherit the listener's options; subscribe again in
	// case a kernel does not copy them.
	if err := subscribe(nfd); err != nil {
		unix.Close(nfd)
		return nil, l.opErr(err)
	}
	c, err := newConn(nfd, peerAddr(nfd, sa), l.cfg)
	if err != nil {
		return nil, l.opErr(err)
	}
	return c, nil
}

func (l *Listener) opErr(err error) error {
	if l.closed.Load() {
		err = net.ErrClosed
	}
	return &net.OpError{Op: "accept", Net: "sctp", Addr: l.addr, Err: err}
}
