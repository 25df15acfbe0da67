package sctpnet

import "errors"

var (
	// ErrAborted matches read errors caused by an ABORT: the peer aborted,
	// or the association was lost (COMM_LOST, ECONNRESET).
	ErrAborted = errors.New("sctp: association aborted")

	// ErrMessageTooLarge is returned by ReadMessage for a message larger
	// than Config.MaxMessageSize; the rest of that message is discarded.
	ErrMessageTooLarge = errors.New("sctp: message too large")

	// ErrNotSupported is returned on platforms without SCTP support here.
	ErrNotSupported = errors.New("sctp: not supported on this platform")
)
