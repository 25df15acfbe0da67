// Package sctprelay forwards SCTP messages between two associations, as a
// proxy does, and echoes them, as a test server does. It works on
// sctpnet.Conn and knows nothing of Caddy.
//
// Each message is read whole, as the pieces the kernel hands over
// (sctpnet.Conn.ReadMessagePieces, partial delivery up to MSG_EOR, in
// pooled buffers taken only when data arrives), and written as one message
// (one sendmsg(2) of those pieces: Linux has no explicit end-of-record
// mode) with the same stream identifier, the same payload protocol
// identifier (raw, never byte-swapped) and the same unordered flag. The
// buffers go back to the pool as soon as the message is sent, so an idle
// association holds none, and a busy one at most its message in transit,
// bounded by the source Conn's MaxMessageSize; a larger message aborts
// both associations with an error matching sctpnet.ErrMessageTooLarge.
//
// The end of one association is passed on to the other: a graceful
// SHUTDOWN becomes a Shutdown, an ABORT (or a lost association) an Abort.
package sctprelay

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// Stats counts what went one way.
type Stats struct {
	Messages int64
	Bytes    int64
}

// Counters count what went one way while a relay runs; they may be read
// at any time.
type Counters struct {
	Messages atomic.Int64
	Bytes    atomic.Int64
}

// Stats returns the counts so far.
func (c *Counters) Stats() Stats { return Stats{Messages: c.Messages.Load(), Bytes: c.Bytes.Load()} }

// Live counts a relay's messages each way as they are forwarded.
type Live struct {
	AToB, BToA Counters
}

// Side names one of the two associations of a relay.
type Side int

// The sides of a relay: none, the first association (a), the second (b).
const (
	SideNone Side = iota
	SideA
	SideB
)

// Result says how a Relay ended.
type Result struct {
	// AToB and BToA count the messages forwarded each way.
	AToB, BToA Stats
	// Err is nil when both associations ended gracefully, and otherwise
	// the first reason one was aborted: a read error (matching
	// sctpnet.ErrAborted when a peer aborted), a message too large, or a
	// write the other side refused.
	Err error
	// Failed is the association whose read or write gave Err: SideNone
	// when Err is nil.
	Failed Side
}

// Relay forwards messages between a and b in both directions until both
// associations have ended, then closes both. A graceful end of one
// (io.EOF from its reads) shuts the other down gracefully; an abort of
// one, or any error forwarding, aborts both.
func Relay(a, b *sctpnet.Conn) Result { return RelayLive(a, b, nil) }

// RelayLive is Relay counting into live (nil: a private one) as it goes.
func RelayLive(a, b *sctpnet.Conn, live *Live) Result {
	var (
		res  Result
		wg   sync.WaitGroup
		once sync.Once
	)
	if live == nil {
		live = new(Live)
	}
	fail := func(side Side, err error) { once.Do(func() { res.Err, res.Failed = err, side }) }
	wg.Add(1)
	go func() {
		defer wg.Done()
		forward(b, a, SideB, SideA, &live.AToB, fail)
	}()
	forward(a, b, SideA, SideB, &live.BToA, fail)
	wg.Wait()
	a.Close()
	b.Close()
	res.AToB, res.BToA = live.AToB.Stats(), live.BToA.Stats()
	return res
}

// forward copies messages from src to dst until src ends, and passes the
// way it ended on to dst.
func forward(dst, src *sctpnet.Conn, dstSide, srcSide Side, st *Counters, fail func(Side, error)) {
	var (
		msg      [][]byte
		draining bool // dst refuses data because it is shutting down
	)
	for {
		var info sctpnet.Info
		var err error
		msg, info, err = src.ReadMessagePieces(msg)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				// Both ends may try to shut down: the second attempt
				// finds the association gone, which is fine.
				_ = dst.Shutdown()
			default:
				fail(srcSide, err)
				_ = dst.Abort()
				_ = src.Abort()
			}
			return
		}
		if draining {
			msg = sctpnet.ReleasePieces(msg)
			continue
		}
		var n int
		n, err = dst.WriteMsgBuffers(msg, Forwarded(info))
		size := piecesLen(msg)
		msg = sctpnet.ReleasePieces(msg)
		switch {
		case err == nil:
			st.Messages.Add(1)
			st.Bytes.Add(int64(n))
		case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ESHUTDOWN):
			// dst is being shut down: its reader will see the end
			// and shut src down; until then, drop what src sends.
			draining = true
		default:
			fail(dstSide, fmt.Errorf("forwarding a message of %d bytes on stream %d: %w", size, info.Stream, err))
			_ = dst.Abort()
			_ = src.Abort()
			return
		}
	}
}

// Forwarded is the send Info that forwards a message received with info:
// its stream, its PPID unchanged and its unordered flag, nothing else.
func Forwarded(info sctpnet.Info) sctpnet.Info {
	return sctpnet.Info{Stream: info.Stream, PPID: info.PPID, Flags: info.Flags & sctpnet.FlagUnordered}
}

// Echo sends every message read from c back on the same stream with the
// same PPID and unordered flag until the association ends, then closes c.
// It returns nil after a graceful end and the reason otherwise; on any
// error it aborts the association.
func Echo(c *sctpnet.Conn) error {
	defer c.Close()
	var msg [][]byte
	for {
		var info sctpnet.Info
		var err error
		msg, info, err = c.ReadMessagePieces(msg)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			_ = c.Abort()
			return err
		}
		_, err = c.WriteMsgBuffers(msg, Forwarded(info))
		size := piecesLen(msg)
		msg = sctpnet.ReleasePieces(msg)
		if err != nil {
			_ = c.Abort()
			return fmt.Errorf("echoing a message of %d bytes on stream %d: %w", size, info.Stream, err)
		}
	}
}

func piecesLen(p [][]byte) int {
	n := 0
	for _, b := range p {
		n += len(b)
	}
	return n
}
