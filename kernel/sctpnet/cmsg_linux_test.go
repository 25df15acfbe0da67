//go:build linux && !386

package sctpnet

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"
)

func TestEncodeSndInfo(t *testing.T) {
	info := Info{Stream: 7, PPID: RawPPID(1000), Flags: FlagUnordered, Context: 99}
	b := encodeSndInfo(info)
	msgs, err := unix.ParseSocketControlMessage(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse: %v, %d messages", err, len(msgs))
	}
	m := msgs[0]
	if m.Header.Level != sctp.SOL_SCTP || m.Header.Type != sctp.SCTP_CMSG_SNDINFO || len(m.Data) != sizeofSndInfo {
		t.Fatalf("header %+v, %d data bytes", m.Header, len(m.Data))
	}
	// Same layout as the library's struct sctp_sndinfo.
	got := *(*sctp.SndInfo)(unsafe.Pointer(&m.Data[0]))
	want := sctp.SndInfo{SID: 7, Flags: sctp.SCTP_UNORDERED, PPID: RawPPID(1000), Context: 99}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func cmsg(typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = sctp.SOL_SCTP
	h.Type = typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestParseRcvInfo(t *testing.T) {
	e := binary.NativeEndian
	rcv := make([]byte, sizeofRcvInfo)
	e.PutUint16(rcv[0:], 3)          // sid
	e.PutUint16(rcv[2:], 4)          // ssn
	e.PutUint16(rcv[4:], 1)          // flags: unordered
	e.PutUint32(rcv[8:], 0x11223344) // ppid
	e.PutUint32(rcv[12:], 5)         // tsn
	e.PutUint32(rcv[16:], 6)         // cumtsn
	e.PutUint32(rcv[20:], 7)         // context
	e.PutUint32(rcv[24:], 8)         // assoc id
	want := Info{Stream: 3, SSN: 4, Flags: 1, PPID: 0x11223344, TSN: 5, CumTSN: 6, Context: 7, AssocID: 8}

	snd := (*[sizeofSndRcvInfo]byte)(unsafe.Pointer(&sctp.SndRcvInfo{
		Stream: 9, SSN: 10, Flags: 0, PPID: 0x55667788, Context: 11, TSN: 12, CumTSN: 13, AssocID: 14}))[:]
	wantSnd := Info{Stream: 9, SSN: 10, PPID: 0x55667788, Context: 11, TSN: 12, CumTSN: 13, AssocID: 14}

	for _, c := range []struct {
		name string
		oob  []byte
		want Info
		ok   bool
	}{
		{"rcvinfo", cmsg(sctp.SCTP_CMSG_RCVINFO, rcv), want, true},
		{"sndrcv", cmsg(sctp.SCTP_CMSG_SNDRCV, snd), wantSnd, true},
		{"both, rcvinfo wins", append(cmsg(sctp.SCTP_CMSG_SNDRCV, snd), cmsg(sctp.SCTP_CMSG_RCVINFO, rcv)...), want, true},
		{"none", nil, Info{}, false},
		{"short", cmsg(sctp.SCTP_CMSG_RCVINFO, rcv[:10]), Info{}, false},
	} {
		got, ok := parseRcvInfo(c.oob)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if unsafe.Sizeof(sctp.SndRcvInfo{}) != sizeofSndRcvInfo || unsafe.Sizeof(sctp.SndInfo{}) != sizeofSndInfo {
		t.Error("struct sizes differ from the library's")
	}
	if unsafe.Sizeof(sctp.Status{}) != 176 {
		t.Errorf("sctp.Status is %d bytes, struct sctp_status 176", unsafe.Sizeof(sctp.Status{}))
	}
}
