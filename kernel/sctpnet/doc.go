// Package sctpnet provides one-to-one style (SOCK_STREAM) SCTP listeners
// and connections, IPv4 and IPv6, whose sockets are non-blocking and wait
// only in Go's netpoller: an idle Accept or Read parks a goroutine, not an
// OS thread, unlike github.com/ishidawataru/sctp, whose types and constants
// it reuses but whose blocking I/O it does not. It knows nothing of Caddy.
//
// Socket creation is pluggable (SocketFunc), so that a caller can create
// the socket inside another network namespace; everything after that
// (bind, listen, connect, I/O) works on the file descriptor wherever the
// calling goroutine runs.
//
// # Messages
//
// SCTP preserves message boundaries. Conn.ReadMsg returns what one
// recvmsg(2) returns: a message larger than the buffer (or than what the
// kernel hands over at once, 64 KiB in practice) comes in several reads,
// and only the last has MsgEOR in its flags. Conn.ReadMessage reassembles
// a whole message into one buffer; Conn.ReadMessagePieces reads it as the
// pieces partial delivery hands over, into pooled buffers taken only once
// data has arrived. Linux has no explicit-EOR send mode (SCTP_EXPLICIT_EOR
// is FreeBSD's): every sendmsg(2) is one complete message, and one larger
// than the send buffer is refused (EMSGSIZE). So a proxy must hold a whole
// message before it forwards it: ReadMessagePieces, then WriteMsgBuffers,
// which sends the pieces as one message, then ReleasePieces. Every Conn's
// send buffer is raised to hold a message of Config.MaxMessageSize.
//
// # PPID
//
// The payload protocol identifier is carried as the kernel gives it:
// the four wire bytes in memory order (Info.PPID). Copy it unchanged from a
// ReadMsg to a WriteMsg and the peer sees the same bytes; never byte-swap
// it when proxying. RawPPID and Info.PPIDNumber convert from and to the
// number that IANA registers (an application meaning PPID 46 sends
// RawPPID(46)).
//
// # Ending an association
//
// Conn.Shutdown starts the graceful SHUTDOWN sequence; both sides' reads
// then return io.EOF once it completes. Conn.Abort sends an ABORT; the
// peer's reads return an error matching ErrAborted. Conn.Close is graceful
// when all received data has been read, and an ABORT otherwise (that is
// the kernel's rule). SCTP has no half-close.
//
// # Buffers
//
// The receive buffer is left to the kernel unless Config.ReadBuffer sets
// it; the send buffer too, except that it is raised to hold a message of
// Config.MaxMessageSize. Past net.core.[rw]mem_max the FORCE variants of
// the options are used where the process has CAP_NET_ADMIN. Measured on
// Debian 12's 6.1 kernel: both default to 212992 bytes; a message larger than SO_SNDBUF is refused with
// EMSGSIZE; and with the default receive buffer every message larger than
// about half of it (the advertised window) stalls 200 ms to 1 s, so that 60
// messages of up to 200 KiB took 5.6 s, against 0.08 s with 8 MiB buffers.
// An explicit SO_RCVBUF is capped at twice net.core.rmem_max unless
// SO_RCVBUFFORCE is allowed; the window an association advertises comes
// from the receive buffer when the association starts.
package sctpnet
