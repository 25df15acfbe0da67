package nsproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-netns/caddy-netns/kernel/relay"
)

// An upstream whose dial has several addresses is connected to at each of
// them for every connection, as caddy-l4's proxy does: the client's bytes
// are copied to every one, and what every one sends back goes to the
// client. The bytes go through a buffer (no splice).

// connectMore dials the other addresses of the candidate c, each counted
// as a connection of its target. On a failure the ones made are closed
// and uncounted, and the candidate that failed is returned.
func (h *Handler) connectMore(ctx context.Context, cx *layer4.Connection, c *cand) ([]net.Conn, *cand, error) {
	conns := make([]net.Conn, 0, len(c.more))
	for i := range c.more {
		m := &c.more[i]
		m.st.Sessions.Add(1)
		up, err := dial(ctx, h.policy, m.t, m.locals(cx)...)
		if err != nil {
			m.st.Sessions.Add(-1)
			for j, up := range conns {
				_ = up.Close()
				c.more[j].st.Sessions.Add(-1)
			}
			return nil, m, err
		}
		conns = append(conns, up)
	}
	return conns, c, nil
}

// closeMore closes (or, for UDP, quarantines) the connections to c's other
// addresses, whose sockets are raw, and uncounts them.
func (h *Handler) closeMore(c *cand, raw, conns []net.Conn) {
	for i := range raw {
		h.closeUpstream(raw[i], conns[i])
		c.more[i].st.Sessions.Add(-1)
	}
}

// mirror proxies cx to up and the connections to c's other addresses,
// more (their sockets, until wrapped here): TLS and the PROXY header on
// each, as on the first, then the copying.
func (h *Handler) mirror(cx *layer4.Connection, log connLog, c *cand, up net.Conn, more []net.Conn) error {
	closeIf := h.activeChecks() != nil && h.activeChecks().CloseIfUnhealthy
	for i := range more {
		m := &c.more[i]
		if closeIf {
			m.st.Track(more[i])
			defer m.st.Untrack(more[i])
		}
		w, err := h.wrapUpstream(cx, m.u, m.t, more[i])
		if err != nil {
			return fmt.Errorf("netns %q: %w", arrivalName{cx}, err)
		}
		more[i] = w
	}
	debug := log.enabled(zapcore.DebugLevel)
	var start time.Time
	if debug {
		start = time.Now()
		log.logger().Debug("proxying", zap.Bool("splice", false), zap.Int("upstreams", 1+len(more)))
	}
	res := pipeMirror(downConn{cx}, append([]net.Conn{up}, more...))
	if debug {
		log.logger().Debug("connection closed",
			zap.Int64("bytes_up", res.Up), zap.Int64("bytes_down", res.Down),
			zap.Duration("duration", time.Since(start)), zap.Error(res.Err))
	}
	return nil
}

// mirrorBufSize is the buffer the client's bytes are read into before
// they are written to every upstream.
const mirrorBufSize = 32 << 10

// pipeMirror copies what down sends to every one of ups, in order, and
// what each of ups sends to down, as caddy-l4's proxy does. When down's
// side ends (or a write to an upstream fails) the upstreams' writing sides
// are shut down (a UDP socket's reads are ended instead, leaving it open
// for its quarantine); when every upstream's side has ended, down's
// writing side is shut down; it returns when both are done. Up counts the
// bytes read from down, Down all bytes written to it.
func pipeMirror(down net.Conn, ups []net.Conn) relay.Result {
	var (
		res       relay.Result
		downBytes atomic.Int64
		errMu     sync.Mutex
		wg        sync.WaitGroup
		downDone  atomic.Bool
	)
	fail := func(err error) {
		errMu.Lock()
		if res.Err == nil {
			res.Err = err
		}
		errMu.Unlock()
	}
	var writeMu sync.Mutex // writes to down from several upstreams
	for _, up := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, mirrorBufSize)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					writeMu.Lock()
					_, werr := down.Write(buf[:n])
					writeMu.Unlock()
					if werr != nil {
						fail(werr)
						return
					}
					downBytes.Add(int64(n))
				}
				if err != nil {
					if !errors.Is(err, io.EOF) && !downDone.Load() {
						fail(err)
					}
					return
				}
			}
		}()
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		buf := make([]byte, mirrorBufSize)
		for {
			n, err := down.Read(buf)
			if n > 0 {
				res.Up += int64(n)
				for _, up := range ups {
					if _, werr := up.Write(buf[:n]); werr != nil {
						fail(werr)
						err = werr
						break
					}
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fail(err)
				}
				break
			}
		}
		downDone.Store(true)
		for _, up := range ups {
			endWrite(up)
		}
	}()
	wg.Wait()
	endWrite(down)
	<-upDone
	res.Down = downBytes.Load()
	return res
}

// endWrite shuts down c's writing side; a connection that cannot
// half-close (UDP) has its reads ended instead.
func endWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err == nil || !errors.Is(err, errors.ErrUnsupported) {
			return
		}
	}
	_ = c.SetReadDeadline(time.Unix(1, 0))
}
