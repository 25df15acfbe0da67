package sctpnet

import (
	"context"
	"time"
)

// SocketFunc creates a socket like socket(2). Listen and Dial call it with
// typ = SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC and proto = IPPROTO_SCTP; a
// caller can create the socket inside another network namespace this way.
// nil means a plain socket in the calling thread's namespace.
type SocketFunc func(domain, typ, proto int) (fd int, err error)

// Default values of Config fields.
const (
	DefaultOutStreams     = 64
	DefaultMaxInStreams   = 65535
	DefaultBacklog        = 1024
	DefaultMaxMessageSize = 4 << 20
)

// Config holds the options for Listen and Dial; its zero value is usable.
type Config struct {
	// OutStreams is the number of outbound streams requested when an
	// association starts (SCTP_INITMSG sinit_num_ostreams); the peer may
	// grant fewer. A proxy should dial its upstream with at least as many
	// as the client's association has inbound (Conn.Streams). Default: 64.
	OutStreams uint16

	// MaxInStreams is the most inbound streams accepted. Default: 65535.
	MaxInStreams uint16

	// MaxInitAttempts and MaxInitTimeout (milliseconds) bound the INIT
	// retransmissions. Default: the kernel's (8 attempts, 60 s).
	MaxInitAttempts uint16
	MaxInitTimeout  uint16

	// Nagle, when true, lets the kernel delay small messages to bundle
	// them. Default: false (SCTP_NODELAY is set, as Go does for TCP).
	Nagle bool

	// WriteBuffer sets SO_SNDBUF, in bytes; the kernel doubles the value.
	// Linux refuses to send a message larger than the send buffer
	// (EMSGSIZE), so every Conn's send buffer is raised further to hold a
	// message of MaxMessageSize. The plain option is capped at twice
	// net.core.wmem_max; past that SO_SNDBUFFORCE is used where the
	// process has CAP_NET_ADMIN. Default: 0, the kernel's default
	// (net.core.wmem_default, 212992 on Debian), raised to MaxMessageSize.
	WriteBuffer int

	// ReadBuffer sets SO_RCVBUF, in bytes; the kernel doubles it. The
	// receive window an association advertises comes from it when the
	// association starts (for accepted ones: the listener's). With the
	// kernel's default of 212992 every message larger than about half of
	// it stalls 200 ms to 1 s. Capped at twice net.core.rmem_max, past that
	// SO_RCVBUFFORCE is used where the process has CAP_NET_ADMIN; a small
	// explicit value makes the receiver drop data under load. Default: 0,
	// the kernel's default.
	ReadBuffer int

	// LocalAddress binds a dialing socket before it connects ("10.0.0.1:0",
	// or several hosts "a/b:0"). Default: any address and port.
	LocalAddress string

	// Backlog is the listen(2) backlog. Default: 1024.
	Backlog int

	// Tuning sets the SCTP protocol parameters of the socket before it
	// listens or connects; accepted associations inherit a listener's.
	Tuning Tuning

	// MaxMessageSize bounds the messages ReadMessage and ReadMessagePieces
	// read, in bytes, and sets the least send buffer (see WriteBuffer).
	// Default: 4 MiB.
	MaxMessageSize int
}

func (c Config) withDefaults() Config {
	if c.OutStreams == 0 {
		c.OutStreams = DefaultOutStreams
	}
	if c.MaxInStreams == 0 {
		c.MaxInStreams = DefaultMaxInStreams
	}
	if c.Backlog <= 0 {
		c.Backlog = DefaultBacklog
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	return c
}

// Listen listens with the zero Config; see Config.Listen.
func Listen(ctx context.Context, socket SocketFunc, network, address string) (*Listener, error) {
	return Config{}.Listen(ctx, socket, network, address)
}

// Dial connects with the zero Config; see Config.Dial.
func Dial(ctx context.Context, socket SocketFunc, network, address string) (*Conn, error) {
	return Config{}.Dial(ctx, socket, network, address)
}

// Tuning holds SCTP protocol parameters of an association. A zero field
// keeps the kernel's value (the net.sctp.* sysctls of the socket's
// namespace). Durations are rounded down to milliseconds, and the kernel
// keeps them in clock ticks (4 ms at HZ=250).
type Tuning struct {
	// RTOInitial, RTOMin and RTOMax bound the retransmission timeout
	// (SCTP_RTOINFO). Kernel defaults: 3s, 1s, 60s.
	RTOInitial, RTOMin, RTOMax time.Duration

	// HeartbeatInterval is the time between HEARTBEATs on an idle path
	// (SCTP_PEER_ADDR_PARAMS spp_hbinterval); negative turns heartbeats
	// off. Kernel default: 30s.
	HeartbeatInterval time.Duration

	// PathMaxRetrans is how many retransmissions mark a path unreachable
	// (spp_pathmaxrxt). Kernel default: 5.
	PathMaxRetrans uint16

	// AssocMaxRetrans is how many retransmissions end the association
	// (SCTP_ASSOCINFO sasoc_asocmaxrxt). Kernel default: 10.
	AssocMaxRetrans uint16

	// SackDelay is how long a SACK may be delayed, at most 500ms
	// (SCTP_DELAYED_SACK sack_delay). Kernel default: 200ms.
	SackDelay time.Duration

	// SackFrequency is after how many packets a SACK is sent at once
	// (sack_freq); 1 turns delayed SACKs off (the kernel then reports a
	// delay of 0). Kernel default: 2.
	SackFrequency uint32
}
