//go:build linux && !386

package sctpnet

import (
	"encoding/binary"
	"unsafe"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

const (
	sizeofSndInfo    = 16 // struct sctp_sndinfo
	sizeofRcvInfo    = 28 // struct sctp_rcvinfo
	sizeofSndRcvInfo = 32 // struct sctp_sndrcvinfo
)

// oobSize holds an SCTP_RCVINFO and an SCTP_SNDRCV (if someone enabled the
// older DATA_IO event too) with room to spare.
var oobSize = unix.CmsgSpace(sizeofRcvInfo) + unix.CmsgSpace(sizeofSndRcvInfo) + 64

// encodeSndInfo builds the SCTP_SNDINFO control message for sendmsg.
func encodeSndInfo(info Info) []byte {
	b := make([]byte, unix.CmsgSpace(sizeofSndInfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = sctp.SOL_SCTP
	h.Type = sctp.SCTP_CMSG_SNDINFO
	h.SetLen(unix.CmsgLen(sizeofSndInfo))
	e := binary.NativeEndian
	d := b[unix.CmsgLen(0):]
	e.PutUint16(d[0:], info.Stream)
	e.PutUint16(d[2:], info.Flags)
	e.PutUint32(d[4:], info.PPID) // raw: the kernel copies these bytes to the wire
	e.PutUint32(d[8:], info.Context)
	e.PutUint32(d[12:], 0) // snd_assoc_id: ignored on one-to-one sockets
	return b
}

// parseRcvInfo extracts SCTP_RCVINFO (or, failing that, SCTP_SNDRCV) from
// recvmsg's control data.
func parseRcvInfo(oob []byte) (Info, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Info{}, false
	}
	e := binary.NativeEndian
	var info Info
	found := false
	for _, m := range msgs {
		if m.Header.Level != sctp.SOL_SCTP {
			continue
		}
		d := m.Data
		switch {
		case m.Header.Type == sctp.SCTP_CMSG_RCVINFO && len(d) >= sizeofRcvInfo:
			return Info{
				Stream:  e.Uint16(d[0:]),
				SSN:     e.Uint16(d[2:]),
				Flags:   e.Uint16(d[4:]),
				PPID:    e.Uint32(d[8:]),
				TSN:     e.Uint32(d[12:]),
				CumTSN:  e.Uint32(d[16:]),
				Context: e.Uint32(d[20:]),
				AssocID: int32(e.Uint32(d[24:])),
			}, true
		case m.Header.Type == sctp.SCTP_CMSG_SNDRCV && len(d) >= sizeofSndRcvInfo && !found:
			info = Info{
				Stream:  e.Uint16(d[0:]),
				SSN:     e.Uint16(d[2:]),
				Flags:   e.Uint16(d[4:]),
				PPID:    e.Uint32(d[8:]),
				Context: e.Uint32(d[12:]),
				TSN:     e.Uint32(d[20:]),
				CumTSN:  e.Uint32(d[24:]),
				AssocID: int32(e.Uint32(d[28:])),
			}
			found = true
		}
	}
	return info, found
}
