//go:build linux

package nsnetwork

import (
	"errors"
	"net/netip"
	"strconv"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

func setsSupported() error { return nil }

// readLoop hands the member's datagrams to the set until the member is
// closed. It waits for the socket to be readable on Go's netpoller and
// takes a buffer only once a datagram is there, so an idle member holds
// no buffer.
func (m *member) readLoop(sc syscall.Conn) {
	s := m.set
	rc, err := sc.SyscallConn()
	if err != nil {
		s.log.Error("datagram member", zap.String("member", m.spec), zap.Error(err))
		return
	}
	for {
		var (
			d    *dgram
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			buf := dgramPool.Get().(*[]byte)
			n, from, err := unix.Recvfrom(int(fd), *buf, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN || err == unix.EINTR {
				dgramPool.Put(buf)
				return false
			}
			if err != nil {
				dgramPool.Put(buf)
				rerr = err
				return true
			}
			ap, ok := sockaddrAddrPort(from)
			if !ok {
				dgramPool.Put(buf)
				return false // not an IP peer: drop
			}
			d = &dgram{buf: buf, n: n, from: &SetAddr{AddrPort: ap, m: m}}
			return true
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			if m.ctx.Err() != nil {
				return
			}
			// ICMP errors from earlier sends surface here
			// (ECONNREFUSED); they are not fatal.
			m.stats.errors.Add(1)
			if !errors.Is(rerr, unix.ECONNREFUSED) {
				s.log.Debug("datagram read failed", zap.String("member", m.spec), zap.Error(rerr))
			}
			continue
		}
		m.stats.packetsIn.Add(1)
		m.stats.bytesIn.Add(uint64(d.n))
		select {
		case s.packets <- d:
		case <-m.ctx.Done():
			dgramPool.Put(d.buf)
			return
		}
	}
}

func sockaddrAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if sa.ZoneId != 0 {
			ip = ip.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}
