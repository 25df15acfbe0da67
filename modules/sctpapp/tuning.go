package sctpapp

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// Tuning sets SCTP parameters of associations, applied with setsockopt.
// Every field is optional: an unset one keeps the kernel's value (the
// net.sctp.* sysctls of the socket's namespace) or the default stated.
// The kernel keeps times in clock ticks (4 ms at HZ=250) and rounds.
type Tuning struct {
	// RTOInitial, RTOMin and RTOMax bound the retransmission timeout.
	// RTOMin <= RTOInitial <= RTOMax. Default: the kernel's, 3s.
	RTOInitial caddy.Duration `json:"rto_initial,omitempty"`
	// RTOMin is the smallest retransmission timeout. Default: the
	// kernel's, 1s.
	RTOMin caddy.Duration `json:"rto_min,omitempty"`
	// RTOMax is the largest retransmission timeout. Default: the
	// kernel's, 60s.
	RTOMax caddy.Duration `json:"rto_max,omitempty"`

	// HeartbeatInterval is the time between HEARTBEATs on an idle path;
	// a negative value ("off" in a Caddyfile) turns heartbeats off.
	// Kernel default: 30s.
	HeartbeatInterval caddy.Duration `json:"heartbeat_interval,omitempty"`

	// PathMaxRetransmissions is how many retransmissions mark a path
	// unreachable. Kernel default: 5.
	PathMaxRetransmissions uint16 `json:"path_max_retransmissions,omitempty"`

	// AssociationMaxRetransmissions is how many retransmissions end the
	// association. Kernel default: 10.
	AssociationMaxRetransmissions uint16 `json:"association_max_retransmissions,omitempty"`

	// SackDelay is how long a SACK may be delayed, at most 500ms.
	// Kernel default: 200ms.
	SackDelay caddy.Duration `json:"sack_delay,omitempty"`

	// SackFrequency is after how many packets a SACK is sent at once; 1
	// turns delayed SACKs off. Kernel default: 2.
	SackFrequency uint32 `json:"sack_frequency,omitempty"`

	// NoDelay, when false, lets the kernel delay small messages to bundle
	// them (Nagle). Default: true (SCTP_NODELAY set).
	NoDelay *bool `json:"nodelay,omitempty"`

	// WriteBuffer is the send buffer (SO_SNDBUF) in bytes; the kernel
	// doubles it. It is raised further to hold a message of the server's
	// max_message_size. Default: the kernel's (212992), raised so.
	WriteBuffer int `json:"write_buffer,omitempty"`

	// The settings below act when an association starts, so they apply to
	// upstream dials only (a server's listening sockets are shared across
	// reloads and keep the stream counts and the 4 MiB receive buffer they
	// were created with).

	// OutStreams is the number of outbound streams asked for. Default:
	// as many as the client's association has inbound.
	OutStreams uint16 `json:"out_streams,omitempty"`

	// InStreams is the most inbound streams accepted. Default: as many
	// as the client's association has outbound.
	InStreams uint16 `json:"in_streams,omitempty"`

	// InitMaxAttempts is how many times an INIT is sent. Kernel default: 8.
	InitMaxAttempts uint16 `json:"init_max_attempts,omitempty"`

	// InitMaxTimeout is the longest wait between INITs, at most 65.535s.
	// Kernel default: 60s.
	InitMaxTimeout caddy.Duration `json:"init_max_timeout,omitempty"`

	// ReadBuffer is the receive buffer (SO_RCVBUF) in bytes, which the
	// receive window the upstream sees comes from; the kernel doubles it.
	// Default: 4 MiB (4194304).
	ReadBuffer int `json:"read_buffer,omitempty"`
}

// validate checks the fields; dials says whether the settings that act
// when an association starts are allowed.
func (t *Tuning) validate(dials bool) error {
	if t == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"rto_initial", t.RTOInitial}, {"rto_min", t.RTOMin}, {"rto_max", t.RTOMax}, {"sack_delay", t.SackDelay}, {"init_max_timeout", t.InitMaxTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s: %s is negative", d.name, time.Duration(d.v))
		}
		if d.v > 0 && d.v < caddy.Duration(time.Millisecond) {
			return fmt.Errorf("%s: %s is less than 1ms", d.name, time.Duration(d.v))
		}
	}
	switch {
	case t.RTOMin > 0 && t.RTOMax > 0 && t.RTOMin > t.RTOMax:
		return fmt.Errorf("rto_min %s is above rto_max %s", time.Duration(t.RTOMin), time.Duration(t.RTOMax))
	case t.RTOInitial > 0 && t.RTOMin > 0 && t.RTOInitial < t.RTOMin:
		return fmt.Errorf("rto_initial %s is below rto_min %s", time.Duration(t.RTOInitial), time.Duration(t.RTOMin))
	case t.RTOInitial > 0 && t.RTOMax > 0 && t.RTOInitial > t.RTOMax:
		return fmt.Errorf("rto_initial %s is above rto_max %s", time.Duration(t.RTOInitial), time.Duration(t.RTOMax))
	case t.SackDelay > caddy.Duration(500*time.Millisecond):
		return fmt.Errorf("sack_delay: %s is above 500ms", time.Duration(t.SackDelay))
	case t.InitMaxTimeout > caddy.Duration(65535*time.Millisecond):
		return fmt.Errorf("init_max_timeout: %s is above 65.535s", time.Duration(t.InitMaxTimeout))
	case t.WriteBuffer < 0 || t.WriteBuffer > MaxMessageSizeLimit:
		return fmt.Errorf("write_buffer: %d is outside 1 to %d bytes", t.WriteBuffer, MaxMessageSizeLimit)
	case t.ReadBuffer < 0 || t.ReadBuffer > MaxMessageSizeLimit:
		return fmt.Errorf("read_buffer: %d is outside 1 to %d bytes", t.ReadBuffer, MaxMessageSizeLimit)
	}
	if !dials {
		for _, f := range []struct {
			name string
			set  bool
		}{{"out_streams", t.OutStreams > 0}, {"in_streams", t.InStreams > 0}, {"init_max_attempts", t.InitMaxAttempts > 0},
			{"init_max_timeout", t.InitMaxTimeout > 0}, {"read_buffer", t.ReadBuffer > 0}} {
			if f.set {
				return fmt.Errorf("%s: applies to upstream dials only (set it in the proxy's tuning)", f.name)
			}
		}
	}
	return nil
}

// protocol is the part applied to an established association too.
func (t *Tuning) protocol() sctpnet.Tuning {
	if t == nil {
		return sctpnet.Tuning{}
	}
	return sctpnet.Tuning{
		RTOInitial:        time.Duration(t.RTOInitial),
		RTOMin:            time.Duration(t.RTOMin),
		RTOMax:            time.Duration(t.RTOMax),
		HeartbeatInterval: time.Duration(t.HeartbeatInterval),
		PathMaxRetrans:    t.PathMaxRetransmissions,
		AssocMaxRetrans:   t.AssociationMaxRetransmissions,
		SackDelay:         time.Duration(t.SackDelay),
		SackFrequency:     t.SackFrequency,
	}
}

// dialConfig is the sctpnet.Config of an upstream dial for a client
// association with in and out streams.
func (t *Tuning) dialConfig(in, out uint16, maxMessage int) sctpnet.Config {
	cfg := sctpnet.Config{OutStreams: max(in, 1), MaxInStreams: max(out, 1), MaxMessageSize: maxMessage, ReadBuffer: ReadBuffer}
	if t == nil {
		return cfg
	}
	cfg.Tuning = t.protocol()
	if t.OutStreams > 0 {
		cfg.OutStreams = t.OutStreams
	}
	if t.InStreams > 0 {
		cfg.MaxInStreams = t.InStreams
	}
	cfg.MaxInitAttempts = t.InitMaxAttempts
	cfg.MaxInitTimeout = uint16(time.Duration(t.InitMaxTimeout) / time.Millisecond)
	if t.NoDelay != nil && !*t.NoDelay {
		cfg.Nagle = true
	}
	if t.ReadBuffer > 0 {
		cfg.ReadBuffer = t.ReadBuffer
	}
	cfg.WriteBuffer = t.WriteBuffer
	return cfg
}

// unmarshalTuning parses a tuning block:
//
//	tuning {
//		rto_initial <duration>
//		rto_min <duration>
//		rto_max <duration>
//		heartbeat_interval <duration>|off
//		path_max_retransmissions <n>
//		association_max_retransmissions <n>
//		sack_delay <duration>
//		sack_frequency <n>
//		nodelay on|off
//		write_buffer <size>
//		# upstream dials only:
//		out_streams <n>
//		in_streams <n>
//		init_max_attempts <n>
//		init_max_timeout <duration>
//		read_buffer <size>
//	}
func unmarshalTuning(d *caddyfile.Dispenser) (*Tuning, error) {
	t := new(Tuning)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if !d.NextArg() {
			return nil, d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		dur := func(p *caddy.Duration) error {
			v, err := caddy.ParseDuration(val)
			if err != nil {
				return d.Errf("%s %q: %v", opt, val, err)
			}
			*p = caddy.Duration(v)
			return nil
		}
		num := func(bits int) (uint64, error) {
			var n uint64
			if _, err := fmt.Sscanf(val, "%d", &n); err != nil || fmt.Sprint(n) != val || n == 0 || n >= 1<<bits {
				return 0, d.Errf("%s %q: want a whole number from 1 to %d", opt, val, uint64(1)<<bits-1)
			}
			return n, nil
		}
		u16 := func(p *uint16) error {
			n, err := num(16)
			*p = uint16(n)
			return err
		}
		size := func(p *int) error {
			n, err := humanize.ParseBytes(val)
			if err != nil || n == 0 || n > MaxMessageSizeLimit {
				return d.Errf("%s %q: want a size from 1 byte to 1GiB, e.g. 4MiB", opt, val)
			}
			*p = int(n)
			return nil
		}
		var err error
		switch opt {
		case "rto_initial":
			err = dur(&t.RTOInitial)
		case "rto_min":
			err = dur(&t.RTOMin)
		case "rto_max":
			err = dur(&t.RTOMax)
		case "heartbeat_interval":
			if val == "off" {
				t.HeartbeatInterval = -1
			} else {
				err = dur(&t.HeartbeatInterval)
			}
		case "path_max_retransmissions":
			err = u16(&t.PathMaxRetransmissions)
		case "association_max_retransmissions":
			err = u16(&t.AssociationMaxRetransmissions)
		case "sack_delay":
			err = dur(&t.SackDelay)
		case "sack_frequency":
			var n uint64
			n, err = num(32)
			t.SackFrequency = uint32(n)
		case "nodelay":
			switch val {
			case "on":
				t.NoDelay = new(bool)
				*t.NoDelay = true
			case "off":
				t.NoDelay = new(bool)
			default:
				err = d.Errf("nodelay %q: want on or off", val)
			}
		case "write_buffer":
			err = size(&t.WriteBuffer)
		case "out_streams":
			err = u16(&t.OutStreams)
		case "in_streams":
			err = u16(&t.InStreams)
		case "init_max_attempts":
			err = u16(&t.InitMaxAttempts)
		case "init_max_timeout":
			err = dur(&t.InitMaxTimeout)
		case "read_buffer":
			err = size(&t.ReadBuffer)
		default:
			return nil, d.Errf("unrecognized tuning option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}
