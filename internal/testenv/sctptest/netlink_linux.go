package sctptest

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// A tiny rtnetlink client: just enough to create veth pairs and add
// addresses, so that tests need neither iproute2 nor a netlink module.

var nlSeq atomic.Uint32

// nlAttr encodes one rtattr whose payload is the concatenation of parts
// (nested attributes are just encoded attributes concatenated).
func nlAttr(typ uint16, parts ...[]byte) []byte {
	n := unix.SizeofRtAttr
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, unix.SizeofRtAttr, nlAlign(n))
	binary.NativeEndian.PutUint16(b[0:], uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b[:nlAlign(n)]
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func nlString(s string) []byte { return append([]byte(s), 0) }

func nlU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// ifInfoMsg encodes struct ifinfomsg.
func ifInfoMsg(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// nlRequest sends one request on a NETLINK_ROUTE socket of the calling
// thread's namespace and waits for its acknowledgement.
func nlRequest(typ uint16, flags uint16, body ...[]byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	seq := nlSeq.Add(1)
	msg := make([]byte, unix.SizeofNlMsghdr)
	for _, p := range body {
		msg = append(msg, p...)
	}
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for range 16 { // bounded: the ack is the first message with our seq
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("netlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
	return fmt.Errorf("netlink: no acknowledgement")
}
