package sctpnet

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/ishidawataru/sctp"
)

func assocChange(state sctp.SCTPState, code uint16) []byte {
	b := make([]byte, 20)
	e := binary.NativeEndian
	e.PutUint16(b[0:], uint16(sctp.SCTP_ASSOC_CHANGE))
	e.PutUint32(b[4:], 20)
	e.PutUint16(b[8:], uint16(state))
	e.PutUint16(b[10:], code)
	return b
}

func TestNotification(t *testing.T) {
	shutdownEvent := make([]byte, 12)
	binary.NativeEndian.PutUint16(shutdownEvent, uint16(sctp.SCTP_SHUTDOWN_EVENT))
	binary.NativeEndian.PutUint32(shutdownEvent[4:], 12)
	for _, c := range []struct {
		name    string
		b       []byte
		want    error // nil, io.EOF or ErrAborted
		wantErr bool  // parse error
	}{
		{"comm up", assocChange(sctp.SCTP_COMM_UP, 0), nil, false},
		{"restart", assocChange(sctp.SCTP_RESTART, 0), nil, false},
		{"shutdown comp", assocChange(sctp.SCTP_SHUTDOWN_COMP, 0), io.EOF, false},
		{"comm lost", assocChange(sctp.SCTP_COMM_LOST, 12), ErrAborted, false},
		{"cant start", assocChange(sctp.SCTP_CANT_STR_ASSOC, 0), ErrAborted, false},
		{"shutdown event", shutdownEvent, nil, false},
		{"short", []byte{1, 2, 3}, nil, true},
		{"short assoc change", assocChange(sctp.SCTP_COMM_LOST, 0)[:10], nil, true},
	} {
		n, err := parseNotification(c.b)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: parse error %v", c.name, err)
			continue
		}
		if err != nil {
			continue
		}
		if got := n.err(); !errors.Is(got, c.want) || (c.want == nil && got != nil) {
			t.Errorf("%s: err() = %v, want %v", c.name, got, c.want)
		}
	}
	if !notificationComplete(assocChange(0, 0)) || notificationComplete(assocChange(0, 0)[:12]) || notificationComplete(nil) {
		t.Error("notificationComplete")
	}
}
