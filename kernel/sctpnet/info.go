package sctpnet

import (
	"encoding/binary"

	"github.com/ishidawataru/sctp"
)

// MsgEOR is set in the flags ReadMsg returns when the read completes a
// message (MSG_EOR on Linux).
const MsgEOR = 0x80

// FlagUnordered in Info.Flags marks a message sent or received unordered.
const FlagUnordered = sctp.SCTP_UNORDERED

// Info is the per-message metadata of SCTP_SNDINFO (sending) and
// SCTP_RCVINFO (receiving).
type Info struct {
	// Stream is the stream identifier. Sending on a stream at or above the
	// association's outbound stream count fails (see Conn.Streams).
	Stream uint16

	// PPID is the payload protocol identifier as the kernel stores it: the
	// wire bytes in memory order, so copying it unchanged forwards it
	// untouched. Use RawPPID and PPIDNumber for its numeric value.
	PPID uint32

	// Flags: FlagUnordered; on send other SCTP_SNDINFO flags pass through.
	Flags uint16

	// Context is an opaque value: on send it is kept by the local kernel
	// (reported on send failure), on receive it is the socket's context.
	Context uint32

	// Received only.
	SSN     uint16
	TSN     uint32
	CumTSN  uint32
	AssocID int32
}

// Unordered reports whether the message was (or is to be) sent unordered.
func (i Info) Unordered() bool { return i.Flags&FlagUnordered != 0 }

// PPIDNumber returns the PPID as a number (network byte order decoded).
func (i Info) PPIDNumber() uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], i.PPID)
	return binary.BigEndian.Uint32(b[:])
}

// RawPPID returns the Info.PPID value that puts the number n on the wire.
func RawPPID(n uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return binary.NativeEndian.Uint32(b[:])
}
