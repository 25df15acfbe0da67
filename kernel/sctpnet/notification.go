package sctpnet

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ishidawataru/sctp"
)

// notification is the part of an SCTP notification (RFC 6458 6.1) that
// decides what a reader sees.
type notification struct {
	Type  uint16 // sn_type: sctp.SCTP_ASSOC_CHANGE, ...
	State uint16 // sac_state for SCTP_ASSOC_CHANGE
	Error uint16 // sac_error for SCTP_ASSOC_CHANGE
}

// notificationComplete reports whether b holds a whole notification: its
// header's sn_length says how long it is.
func notificationComplete(b []byte) bool {
	return len(b) >= 8 && uint32(len(b)) >= binary.NativeEndian.Uint32(b[4:])
}

func parseNotification(b []byte) (notification, error) {
	if len(b) < 8 {
		return notification{}, fmt.Errorf("sctp: short notification (%d bytes)", len(b))
	}
	n := notification{Type: binary.NativeEndian.Uint16(b)}
	if sctp.SCTPNotificationType(n.Type) == sctp.SCTP_ASSOC_CHANGE {
		if len(b) < 12 {
			return notification{}, fmt.Errorf("sctp: short association change notification (%d bytes)", len(b))
		}
		n.State = binary.NativeEndian.Uint16(b[8:])
		n.Error = binary.NativeEndian.Uint16(b[10:])
	}
	return n, nil
}

// err maps a notification to what the reader gets: io.EOF once a graceful
// shutdown completes, an error matching ErrAborted when the association is
// lost, nil (read on) for everything else.
func (n notification) err() error {
	if sctp.SCTPNotificationType(n.Type) != sctp.SCTP_ASSOC_CHANGE {
		return nil
	}
	switch sctp.SCTPState(n.State) {
	case sctp.SCTP_SHUTDOWN_COMP:
		return io.EOF
	case sctp.SCTP_COMM_LOST:
		return fmt.Errorf("%w: communication lost (error %d)", ErrAborted, n.Error)
	case sctp.SCTP_CANT_STR_ASSOC:
		return fmt.Errorf("%w: cannot start association (error %d)", ErrAborted, n.Error)
	}
	return nil
}
