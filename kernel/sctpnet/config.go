package sctpnet

import "context"

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

	// WriteBuffer sets SO_SNDBUF, in bytes. Linux refuses to send a message
	// larger than the send buffer (EMSGSIZE), so this is also the largest
	// message WriteMsg can send. The kernel doubles the value and caps it
	// at twice net.core.wmem_max. Default: 0, the kernel's default
	// (net.core.wmem_default, 212992 on Debian: about 208 KiB messages).
	WriteBuffer int

	// ReadBuffer sets SO_RCVBUF, in bytes; the kernel doubles it and caps
	// it at twice net.core.rmem_max. Leave it 0 (the kernel's default)
	// unless rmem_max has been raised: a small explicit receive buffer makes
	// the receiver drop data under load, at the cost of a one-second
	// retransmission each time. Default: 0.
	ReadBuffer int

	// LocalAddress binds a dialing socket before it connects ("10.0.0.1:0",
	// or several hosts "a/b:0"). Default: any address and port.
	LocalAddress string

	// Backlog is the listen(2) backlog. Default: 1024.
	Backlog int

	// MaxMessageSize bounds the messages ReadMessage reassembles, in bytes.
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
