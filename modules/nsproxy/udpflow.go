package nsproxy

import (
	"container/list"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/relay"
)

// A UDP flow through caddy-l4 ends idle_timeout after its client's last
// datagram, whether or not the upstream still owes it a reply. Its
// upstream socket is connected to the upstream's address: once closed, its
// port may be given to the next flow's upstream socket connected to the
// same address, and the kernel hands that socket the late reply, although
// the flow may be another tenant's. So the socket of an ended flow is not
// closed at once but kept in quarantine: open, its port taken, late
// replies read and discarded, for udp_quarantine; then closed. Nothing in
// a datagram tells which flow it answers, so keeping the port is the only
// fence.
//
// And while the upstream keeps sending, the flow is not idle (pipeUDP):
// caddy-l4 alone ends it idle_timeout after the client's last datagram.

// Defaults of the handler's quarantine fields.
const (
	defaultUDPQuarantine    = 10 * time.Second
	defaultUDPQuarantineMax = 4096
)

// pipeUDP relays one UDP flow: client datagrams from down to up, upstream
// datagrams from up to down, until the flow is idle (caddy-l4's
// idle_timeout) or either side fails. raw is the socket under up. It does
// not close raw: the caller quarantines it. It closes down when the
// upstream side fails, so the flow ends.
//
// caddy-l4 (v0.1.2) counts only the client's datagrams as activity: its
// flow's Read restarts the idle timer each time it is called, and ends the
// flow when the timer fires during a Read. So that upstream datagrams
// count too, each one (at most one per keepAliveEvery) interrupts the
// client side's pending Read through its read deadline; the Read is then
// started again, which restarts the timer. With another layer4 version
// whose Read does not restart the timer, flows end as that version says.
func pipeUDP(down, up net.Conn, raw *net.UDPConn) relay.Result {
	var (
		r        relay.Result
		stopping atomic.Bool
		errMu    sync.Mutex
		wg       sync.WaitGroup
		readAt   atomic.Int64 // when the client side's current Read started (UnixNano)
		kicked   atomic.Bool  // its read deadline was set to interrupt it
	)
	fail := func(err error) {
		errMu.Lock()
		if r.Err == nil {
			r.Err = err
		}
		errMu.Unlock()
	}
	readAt.Store(time.Now().UnixNano())
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, udpBufSize)
		var err error
		for {
			var n int
			n, err = up.Read(buf)
			if err != nil {
				break
			}
			if _, err = down.Write(buf[:n]); err != nil {
				break
			}
			r.Down += int64(n)
			if time.Now().UnixNano()-readAt.Load() > int64(keepAliveEvery) && !kicked.Swap(true) {
				_ = down.SetReadDeadline(longAgo)
			}
		}
		if stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			return // pipeUDP stopped it below
		}
		fail(err)
		_ = down.Close() // ends the client side's Read: the flow ends
	}()
	buf := make([]byte, udpBufSize)
	for {
		readAt.Store(time.Now().UnixNano())
		n, err := down.Read(buf)
		if n > 0 {
			if _, werr := up.Write(buf[:n]); werr != nil {
				fail(werr)
				break
			}
			r.Up += int64(n)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && kicked.Load() {
			// The upstream was active: clear the deadline and read again.
			_ = down.SetReadDeadline(time.Time{})
			kicked.Store(false)
			continue
		}
		if err != io.EOF && !errors.Is(err, net.ErrClosed) {
			fail(err)
		}
		break
	}
	// Stop the upstream side without closing the socket.
	stopping.Store(true)
	_ = raw.SetReadDeadline(longAgo)
	wg.Wait()
	return r
}

const (
	// udpBufSize is the buffer of each direction, as io.Copy's: more than
	// caddy-l4's 9000-byte datagrams from clients.
	udpBufSize = 32 << 10
	// keepAliveEvery is how often, at most, upstream datagrams restart a
	// flow's idle timer: well below any useful idle_timeout.
	keepAliveEvery = 100 * time.Millisecond
)

var longAgo = time.Unix(1, 0)

// quarantine keeps the upstream sockets of ended UDP flows open for hold,
// discarding what they receive. The sockets of every handler, of every
// loaded config, are held in one process-wide list: a reload starts new
// flows (caddy-l4 keys them per config), so a cap per handler would be
// multiplied by the reloads within a hold. A handler's add closes the
// oldest held sockets, early, while max or more are held.
type quarantine struct {
	hold time.Duration
	max  int
	log  *zap.Logger
}

// held is the process-wide quarantine list.
var held struct {
	mu      sync.Mutex
	l       list.List // of *net.UDPConn, oldest first
	lastLog time.Time // of an early close
	early   int       // early closes not logged yet
}

func newQuarantine(hold time.Duration, max int, log *zap.Logger) *quarantine {
	return &quarantine{hold: hold, max: max, log: log}
}

// add takes c, the upstream socket of an ended flow: it is closed once
// hold has passed, or earlier when max newer ones are held.
func (q *quarantine) add(c *net.UDPConn) {
	if q == nil || q.hold <= 0 {
		_ = c.Close()
		return
	}
	if err := c.SetReadDeadline(time.Now().Add(q.hold)); err != nil {
		_ = c.Close()
		return
	}
	held.mu.Lock()
	for held.l.Len() >= q.max {
		old := held.l.Remove(held.l.Front()).(*net.UDPConn)
		_ = old.Close() // its drain goroutine ends
		quarantineEarly.Add(1)
		held.early++
	}
	if held.early > 0 && time.Since(held.lastLog) >= time.Second {
		q.log.Warn("udp_quarantine_max upstream sockets of ended UDP flows held: closed the oldest early; "+
			"a late reply to them may reach a new flow", zap.Int("udp_quarantine_max", q.max),
			zap.Int("closed_early", held.early))
		held.lastLog, held.early = time.Now(), 0
	}
	e := held.l.PushBack(c)
	quarantined.Add(1)
	held.mu.Unlock()
	go q.drain(c, e)
}

// drain reads and discards what c receives until its deadline, then
// closes it, unless add closed it early.
func (q *quarantine) drain(c *net.UDPConn, e *list.Element) {
	defer quarantined.Add(-1)
	var b [1]byte // a datagram longer than that is cut; it is discarded anyway
	for {
		_, err := c.Read(b[:])
		if err == nil {
			quarantineDiscarded.Add(1)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return // closed early; add removed it
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // an ICMP error for an earlier datagram
		}
		break // the deadline
	}
	held.mu.Lock()
	held.l.Remove(e)
	held.mu.Unlock()
	_ = c.Close()
}

// Counters of every handler's quarantine, exported as metrics.
var (
	quarantined         atomic.Int64
	quarantineDiscarded atomic.Int64
	quarantineEarly     atomic.Int64
)

// quarantineCollector exports:
//
//	caddy_netns_udp_quarantine_sockets                 upstream sockets of ended UDP flows held open
//	caddy_netns_udp_late_datagrams_discarded_total     datagrams they received, discarded
//	caddy_netns_udp_quarantine_closed_early_total      sockets closed before udp_quarantine because udp_quarantine_max were held
type quarantineCollector struct{}

var (
	descQuarantined = prometheus.NewDesc("caddy_netns_udp_quarantine_sockets",
		"Upstream sockets of ended UDP flows held open so their port is not reused while late replies may arrive.", nil, nil)
	descDiscarded = prometheus.NewDesc("caddy_netns_udp_late_datagrams_discarded_total",
		"Datagrams received by upstream sockets of ended UDP flows, discarded.", nil, nil)
	descEarly = prometheus.NewDesc("caddy_netns_udp_quarantine_closed_early_total",
		"Upstream sockets of ended UDP flows closed before udp_quarantine had passed, because udp_quarantine_max were held.", nil, nil)
)

func (quarantineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQuarantined
	ch <- descDiscarded
	ch <- descEarly
}

func (quarantineCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descQuarantined, prometheus.GaugeValue, float64(quarantined.Load()))
	ch <- prometheus.MustNewConstMetric(descDiscarded, prometheus.CounterValue, float64(quarantineDiscarded.Load()))
	ch <- prometheus.MustNewConstMetric(descEarly, prometheus.CounterValue, float64(quarantineEarly.Load()))
}

// registerQuarantineMetrics adds the collector to reg once.
func registerQuarantineMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(quarantineCollector{}); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}
