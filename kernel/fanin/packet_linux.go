//go:build linux

package fanin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readBudget is how many datagrams ReadFrom takes from the members of one
// epoll_wait before asking epoll again, so a busy member cannot starve the
// others.
const readBudget = 64

// PacketConn is one net.PacketConn over many UDP sockets.
type PacketConn struct {
	p    poller
	addr net.Addr

	// Used only by the goroutine in p.rc.Read.
	events []unix.EpollEvent
	ready  []*member // members epoll named, not found empty yet
	budget int
	rmu    sync.Mutex         // one ReadFrom at a time, so rd is its alone
	rd     readState          // guarded by rmu
	step   func(uintptr) bool // c.readStep, bound once: no allocation per read

	labels map[string]struct{} // guarded by p.mu

	writeDeadline atomic.Pointer[time.Time]
}

// NewPacketConn returns a PacketConn without members. addr is what
// LocalAddr returns (the address every member is bound to); it may be nil.
func NewPacketConn(addr net.Addr) (*PacketConn, error) {
	c := &PacketConn{addr: addr, events: make([]unix.EpollEvent, eventBatch), labels: map[string]struct{}{}}
	if err := c.p.init(); err != nil {
		return nil, err
	}
	c.step = c.readStep
	return c, nil
}

// AddFD adds a bound UDP socket under tag, which must be comparable and
// not in use, and whose string form (a string as is, a fmt.Stringer's
// String, else fmt.Sprint) must differ from every other member's: it is
// the member part of Addr.String. On success the PacketConn owns fd (it is
// closed by Remove or Close); on error the caller still does.
func (c *PacketConn) AddFD(tag any, fd int) error {
	typ, err := sockInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("fan-in: adding member %v (fd %d): %w", tag, fd, err)
	}
	dom, err := sockInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("fan-in: adding member %v (fd %d): %w", tag, fd, err)
	}
	if typ != unix.SOCK_DGRAM || (dom != unix.AF_INET && dom != unix.AF_INET6) {
		return fmt.Errorf("fan-in: adding member %v (fd %d): not a UDP socket (domain %d, type %d)", tag, fd, dom, typ)
	}
	m := &member{owner: c, tag: tag, fd: fd, label: label(tag), v6: dom == unix.AF_INET6}
	return c.p.add(m, func() error {
		if _, dup := c.labels[m.label]; dup {
			return fmt.Errorf("fan-in: adding member %v: another member's tag also prints as %q", tag, m.label)
		}
		c.labels[m.label] = struct{}{}
		return nil
	})
}

// AddFile adds a duplicate of f's socket, as AddFD does; the caller keeps
// f and may close it.
func (c *PacketConn) AddFile(tag any, f *os.File) error {
	fd, err := dupFile(f)
	if err != nil {
		return fmt.Errorf("fan-in: adding member %v: duplicating %s: %w", tag, f.Name(), err)
	}
	if err := c.AddFD(tag, fd); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}

// Remove takes the member tag out and closes its socket. Once Remove
// returns, ReadFrom returns nothing more from it and WriteTo to its
// addresses fails.
func (c *PacketConn) Remove(tag any) error {
	m, err := c.p.remove(tag)
	if m != nil {
		c.p.mu.Lock()
		delete(c.labels, m.label)
		c.p.mu.Unlock()
	}
	return err
}

// Len returns the number of members.
func (c *PacketConn) Len() int { return c.p.len() }

// Wake makes every ReadFrom waiting now return an error wrapping
// ErrWoken, without closing anything (see Listener.Wake).
func (c *PacketConn) Wake() { c.p.wake() }

// Stats returns the counters of member tag, nil if it is not a member.
func (c *PacketConn) Stats(tag any) *Stats {
	if m := c.p.member(tag); m != nil {
		return &m.stats
	}
	return nil
}

// ReadFrom reads one datagram from any member into b (truncating it if b
// is short, as a UDP socket does) and returns its sender as an *Addr that
// names the member.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	gen := c.p.wakeGen.Load()
	for {
		n, from, err := c.readFrom(gen, b)
		if err == errFruitless {
			time.Sleep(time.Millisecond)
			continue
		}
		if err == errAgain {
			continue
		}
		if err != nil {
			return 0, nil, c.opError("read", nil, err)
		}
		return n, from, nil
	}
}

// errAgain says a Wake older than this ReadFrom ended the wait.
var errAgain = errors.New("woken for an earlier call")

// errFruitless says epoll kept naming members that had nothing to give.
var errFruitless = errors.New("members ready without data")

// fruitlessMax is how many epoll rounds in a row may find ready members
// that give nothing before the reader yields for a moment rather than
// spin (it cannot park while epoll still names a member: the netpoller
// waits for the epoll descriptor edge-triggered).
const fruitlessMax = 8

// readState is one ReadFrom's, kept in the PacketConn (there is one
// reader at a time) so that a read allocates nothing but its *Addr.
type readState struct {
	gen       uint64
	b         []byte
	n         int
	from      *Addr
	err       error
	fruitless int
	rsa       unix.RawSockaddrAny
}

func (c *PacketConn) readFrom(gen uint64, b []byte) (int, *Addr, error) {
	c.rmu.Lock()
	c.rd = readState{gen: gen, b: b}
	err := c.p.rc.Read(c.step)
	n, from, rerr := c.rd.n, c.rd.from, c.rd.err
	c.rd.b, c.rd.from = nil, nil
	c.rmu.Unlock()
	if err != nil && c.p.closed.Load() {
		err = net.ErrClosed
	}
	if from != nil {
		return n, from, nil // a datagram read is never dropped
	}
	if err == nil {
		err = rerr
	}
	if err == nil && c.p.wakeGen.Load() != gen {
		err = ErrWoken
	}
	if err == nil { // woken by an older Wake: wait again
		err = errAgain
	}
	return n, from, err
}

// readStep runs in the epoll descriptor's rc.Read with c.rd set: it reads
// one datagram from a ready member, or says to park.
func (c *PacketConn) readStep(fd uintptr) bool {
	r := &c.rd
	for {
		if c.p.wakeGen.Load() != r.gen {
			return true
		}
		for c.budget > 0 && len(c.ready) > 0 {
			m := c.ready[0]
			c.ready[0] = nil
			c.ready = c.ready[1:]
			if more := c.recv(m); r.from != nil {
				c.budget--
				if more {
					c.ready = append(c.ready, m) // it may hold more
				}
				return true
			}
		}
		clear(c.ready)
		c.ready = c.ready[:0]
		if r.fruitless++; r.fruitless > fruitlessMax {
			r.err = errFruitless
			return true
		}
		k, err := c.p.epollWait(int(fd), c.events)
		if err != nil {
			r.err = err
			return true
		}
		if k == 0 {
			return false // park
		}
		c.budget = readBudget
		for _, ev := range c.events[:k] {
			if c.p.isWake(uint32(ev.Fd)) {
				continue // the generation check above ends the read
			}
			m := c.p.lookup(uint32(ev.Fd))
			if m == nil {
				continue
			}
			if ev.Events&unix.EPOLLERR != 0 {
				m.drainErrors()
			}
			c.ready = append(c.ready, m)
		}
	}
}

// drainErrors discards the errors the kernel holds for m: the error queue
// of a socket with IP_RECVERR or IPV6_RECVERR, and a pending SO_ERROR.
// They are the peers' (ICMP unreachables) and are only counted; left
// there they would keep epoll reporting the member.
func (m *member) drainErrors() {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.fd < 0 {
		return
	}
	var b [1]byte
	var oob [256]byte
	for range 64 {
		if _, _, _, _, err := unix.Recvmsg(m.fd, b[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT); err != nil {
			break
		}
		m.stats.Errors.Add(1)
	}
	if v, err := unix.GetsockoptInt(m.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && v != 0 {
		m.stats.Errors.Add(1)
	}
}

// recv reads one datagram from m into c.rd without waiting. It reports
// false when m turned out empty.
func (c *PacketConn) recv(m *member) (more bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.fd < 0 {
		return false
	}
	r := &c.rd
	for range 16 {
		n, err := recvfrom(m.fd, r.b, &r.rsa)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			// ICMP errors of earlier sends (ECONNREFUSED...) surface
			// here; they are the peer's, not ours: count and go on.
			m.stats.Errors.Add(1)
			continue
		}
		ap, ok := rawAddrPort(&r.rsa)
		if !ok {
			continue // not an IP peer: drop
		}
		m.stats.PacketsIn.Add(1)
		m.stats.BytesIn.Add(uint64(n))
		r.n, r.from = n, &Addr{AddrPort: ap, m: m}
		return true
	}
	return true // errors only, so far: epoll will say
}

// recvfrom is recvfrom(2) with MSG_DONTWAIT into a caller's sockaddr
// buffer (unix.Recvfrom allocates two).
func recvfrom(fd int, b []byte, rsa *unix.RawSockaddrAny) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	l := uint32(unix.SizeofSockaddrAny)
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&l)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawAddrPort is the IP address and port in rsa.
func rawAddrPort(rsa *unix.RawSockaddrAny) (netip.AddrPort, bool) {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port), true
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		ip := netip.AddrFrom16(sa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if sa.Scope_id != 0 {
			ip = ip.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(ip, port), true
	}
	return netip.AddrPort{}, false
}

// WriteTo sends b from the socket of the member that addr (an *Addr from
// this PacketConn's ReadFrom) came in on.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.p.closed.Load() {
		return 0, c.opError("write", addr, net.ErrClosed)
	}
	a, ok := addr.(*Addr)
	if !ok || a.m == nil || a.m.owner != c {
		return 0, c.opError("write", addr, ErrNotMemberAddr)
	}
	m := a.m
	sa := sockaddr(a.AddrPort, m.v6)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.fd < 0 {
		return 0, c.opError("write", addr, fmt.Errorf("member %v was removed: %w", m.tag, net.ErrClosed))
	}
	for {
		err := unix.Sendto(m.fd, b, unix.MSG_DONTWAIT, sa)
		switch err {
		case nil:
			m.stats.PacketsOut.Add(1)
			m.stats.BytesOut.Add(uint64(len(b)))
			return len(b), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// The send buffer is full of datagrams the device has not
			// taken yet: wait for room, up to the write deadline.
			if werr := c.waitWritable(m.fd); werr == nil {
				continue
			} else {
				err = werr
			}
		default:
			err = os.NewSyscallError("sendto", err)
		}
		m.stats.Errors.Add(1)
		return 0, c.opError("write", addr, err)
	}
}

// waitWritable polls one member socket for room to send. It blocks the
// thread (a member has no netpoller registration), in slices of at most
// 100 ms so Close is noticed.
func (c *PacketConn) waitWritable(fd int) error {
	for {
		if c.p.closed.Load() {
			return net.ErrClosed
		}
		wait := 100 * time.Millisecond
		if dl := c.writeDeadline.Load(); dl != nil && !dl.IsZero() {
			left := time.Until(*dl)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 {
			return nil
		}
	}
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.addr, Addr: addr, Err: err}
}

// Close closes every member and wakes a parked ReadFrom.
func (c *PacketConn) Close() error {
	if err := c.p.close(); err != nil {
		return c.opError("close", nil, err)
	}
	return nil
}

// LocalAddr returns the address given to NewPacketConn.
func (c *PacketConn) LocalAddr() net.Addr { return c.addr }

// SetDeadline sets the read and write deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets when a waiting ReadFrom gives up
// (os.ErrDeadlineExceeded); the zero time means never.
func (c *PacketConn) SetReadDeadline(t time.Time) error { return c.p.ep.SetReadDeadline(t) }

// SetWriteDeadline sets how long WriteTo may wait for room in a member's
// send buffer; it rarely has to.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(&t)
	return nil
}

// sockaddr is ap for a socket of the member's family: an IPv4 peer of an
// IPv6 socket is v4-mapped.
func sockaddr(ap netip.AddrPort, v6 bool) unix.Sockaddr {
	ip := ap.Addr()
	if !v6 && ip.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(id)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

var _ net.PacketConn = (*PacketConn)(nil)
