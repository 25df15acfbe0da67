//go:build linux && !386

package sctpnet

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// File returns a duplicate of the listening socket as an *os.File, for
// sharing it (a socket pool, a reload, a child process). Closing either
// one leaves the other open; the socket closes with its last descriptor.
func (l *Listener) File() (*os.File, error) {
	var nfd int
	var err error
	if cerr := l.rc.Control(func(fd uintptr) { nfd, err = dupCloexec(int(fd)) }); cerr != nil {
		return nil, l.opErr(cerr)
	}
	if err != nil {
		return nil, l.opErr(err)
	}
	return os.NewFile(uintptr(nfd), "sctp-listener"), nil
}

// FileListener returns a Listener on a duplicate of f, which must be a
// listening one-to-one (SOCK_STREAM) SCTP socket; f stays open and owned by
// the caller. cfg's MaxMessageSize applies to the accepted Conns; the
// socket options were set when f was created and are not changed.
func (cfg Config) FileListener(f *os.File) (*Listener, error) {
	cfg = cfg.withDefaults()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "sctp", Err: err}
	}
	nfd := -1
	var derr error
	if cerr := rc.Control(func(fd uintptr) { nfd, derr = dupCloexec(int(fd)) }); cerr != nil {
		return nil, &net.OpError{Op: "listen", Net: "sctp", Err: cerr}
	}
	if derr != nil {
		return nil, &net.OpError{Op: "listen", Net: "sctp", Err: derr}
	}
	fail := func(err error) (*Listener, error) {
		unix.Close(nfd)
		return nil, &net.OpError{Op: "listen", Net: "sctp", Err: err}
	}
	if err := checkListening(nfd); err != nil {
		return fail(err)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		return fail(os.NewSyscallError("fcntl", err))
	}
	addr := localAddrs(nfd)
	if addr == nil {
		return fail(errors.New("getsockname: not an inet address"))
	}
	nf := os.NewFile(uintptr(nfd), "sctp-listener")
	nrc, err := nf.SyscallConn()
	if err != nil {
		nf.Close()
		return nil, &net.OpError{Op: "listen", Net: "sctp", Err: err}
	}
	return &Listener{f: nf, rc: nrc, addr: addr, cfg: cfg}, nil
}

func dupCloexec(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return nfd, nil
}

// checkListening makes sure fd is a listening SCTP stream socket.
func checkListening(fd int) error {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_PROTOCOL", err)
	}
	if typ != unix.SOCK_STREAM || proto != unix.IPPROTO_SCTP {
		return fmt.Errorf("not a one-to-one SCTP socket (type %d, protocol %d)", typ, proto)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ACCEPTCONN", err)
	}
	if acc == 0 {
		return errors.New("socket is not listening")
	}
	return nil
}
