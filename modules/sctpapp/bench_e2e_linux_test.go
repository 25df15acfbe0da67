//go:build linux && !386

package sctpapp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// Benchmark messages carry one of these PPIDs: the sink upstream drops bulk
// messages, answers the last message of each batch with a small ack, and
// answers every request with itself.
const (
	ppidBulk      = 1
	ppidBatchLast = 2
	ppidRequest   = 3
)

// Bulk messages go in batches, with at most window messages sent and not
// yet acknowledged by the sink. Without such a window a sender outruns the
// receiving application under emulation, the receiver's window closes,
// and the kernel drops a probe chunk that only a 1 s retransmission
// timeout recovers: the figure would count timeouts, not the proxy.
const (
	batch  = 16
	window = 4 * batch // 64 KiB of 1 KiB messages in flight
)

// sink is the benchmark's upstream.
func sink(c *sctpnet.Conn) {
	defer c.Close()
	var buf []byte
	ack := make([]byte, 8)
	for {
		msg, info, err := c.ReadMessage(buf)
		if err != nil {
			return
		}
		buf = msg
		var reply []byte
		switch info.PPIDNumber() {
		case ppidBatchLast:
			reply = ack
		case ppidRequest:
			reply = msg
		default:
			continue
		}
		if _, err := c.WriteMsg(reply, sctpnet.Info{Stream: info.Stream, PPID: info.PPID}); err != nil {
			return
		}
	}
}

// benchResult is what one path (direct or through Caddy) measured.
type benchResult struct {
	messages int
	elapsed  time.Duration
	rtts     []time.Duration
	rtos     int64 // SCTP retransmission timeouts during the bulk phase
}

func (r benchResult) rate() float64 { return float64(r.messages) / r.elapsed.Seconds() }

func (r benchResult) percentile(p float64) time.Duration {
	s := slices.Clone(r.rtts)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// answer reads one answer of want bytes with PPID ppid.
func answer(c *sctpnet.Conn, buf []byte, want int, ppid uint32) ([]byte, error) {
	msg, info, err := c.ReadMessage(buf)
	if err != nil {
		return msg, err
	}
	if len(msg) != want || info.PPIDNumber() != ppid {
		return msg, fmt.Errorf("answer of %d bytes with PPID %d, want %d bytes with PPID %d", len(msg), info.PPIDNumber(), want, ppid)
	}
	return msg, nil
}

// roundTrip sends one request and waits for it to come back.
func roundTrip(c *sctpnet.Conn, req, buf []byte) ([]byte, error) {
	if _, err := c.WriteMsg(req, sctpnet.Info{PPID: sctpnet.RawPPID(ppidRequest)}); err != nil {
		return buf, err
	}
	return answer(c, buf, len(req), ppidRequest)
}

// measure runs both loads on one new association to addr: batches of 1 KiB
// messages on stream 0 for d (or maxMsgs messages), timed until the last
// batch is acknowledged; then 64-byte round trips, for d or maxRTTs.
func measure(addr string, d time.Duration, maxMsgs, maxRTTs int) (benchResult, error) {
	var r benchResult
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c, err := sctpnet.Dial(ctx, nil, "sctp4", addr)
	cancel()
	if err != nil {
		return r, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	req, buf := make([]byte, 64), make([]byte, 0, 64)
	if buf, err = roundTrip(c, req, buf); err != nil { // the relay is up
		return r, err
	}

	bulk := make([]byte, 1024)
	rto0 := rtoCount()
	start := time.Now()
	unacked := 0
	for r.messages < maxMsgs && time.Since(start) < d {
		for i := range batch {
			ppid := uint32(ppidBulk)
			if i == batch-1 {
				ppid = ppidBatchLast
			}
			if _, err := c.WriteMsg(bulk, sctpnet.Info{PPID: sctpnet.RawPPID(ppid)}); err != nil {
				return r, fmt.Errorf("bulk message %d: %w", r.messages, err)
			}
			r.messages++
		}
		if unacked += batch; unacked == window {
			if buf, err = answer(c, buf, 8, ppidBatchLast); err != nil {
				return r, fmt.Errorf("ack after %d bulk messages: %w", r.messages, err)
			}
			unacked -= batch
		}
	}
	for ; unacked > 0; unacked -= batch {
		if buf, err = answer(c, buf, 8, ppidBatchLast); err != nil {
			return r, fmt.Errorf("ack after %d bulk messages: %w", r.messages, err)
		}
	}
	r.elapsed = time.Since(start)
	r.rtos = rtoCount() - rto0

	start = time.Now()
	for len(r.rtts) < maxRTTs && time.Since(start) < d {
		t0 := time.Now()
		if buf, err = roundTrip(c, req, buf); err != nil {
			return r, fmt.Errorf("round trip %d: %w", len(r.rtts), err)
		}
		r.rtts = append(r.rtts, time.Since(t0))
	}
	if err := c.Shutdown(); err != nil {
		return r, err
	}
	if _, _, err := c.ReadMessage(buf); !errors.Is(err, io.EOF) {
		return r, fmt.Errorf("after shutdown: %v, want io.EOF", err)
	}
	return r, nil
}

// rtoCount is SctpT3RtxExpireds from /proc/net/sctp/snmp (this network
// namespace's retransmission timeouts so far), or 0.
func rtoCount() int64 {
	b, _ := os.ReadFile("/proc/net/sctp/snmp")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "SctpT3RtxExpireds" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// TestSCTPProxyBenchmark measures, in the same run, the rate of 1 KiB
// messages sent one way (in batches, 64 in flight at most) and the
// round-trip time of 64-byte request/response pairs, on a direct
// association to an upstream and on one through the sctp proxy of a Caddy
// loaded through the admin API, and prints them with the ratios
// proxy/direct as lines starting with "sctp-bench:". It asserts nothing
// about the figures: under emulation and on shared machines only the
// ratios mean something. The paths are measured alternately in rounds,
// which are pooled; the table counts the retransmission timeouts (1 s
// each) that hit the bulk phases, since one dominates a rate.
//
//	SCTPVM_RUN=TestSCTPProxyBenchmark go test -count=1 -v -run TestSCTPGuest ./modules/sctpapp/ | grep -o 'sctp-bench:.*'
func TestSCTPProxyBenchmark(t *testing.T) {
	const (
		rounds  = 3
		phase   = 750 * time.Millisecond // per load, path and round
		maxMsgs = 200000
		maxRTTs = 5000
	)
	a := requireGuestSetup(t)
	up := startUpstream(t, nil, sink)
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"bench": proxyServer([]string{"sctp/127.0.0.1:20500"}, "sctp/"+up.addr),
	}, ""))
	paths := []struct{ name, addr string }{{"direct", up.addr}, {"proxy", "127.0.0.1:20500"}}
	results := make([]benchResult, len(paths))
	for round := range rounds {
		for i, p := range paths {
			r, err := measure(p.addr, phase, maxMsgs, maxRTTs)
			if err != nil {
				t.Fatalf("%s, round %d: %v", p.name, round, err)
			}
			t.Logf("%s, round %d: %d messages in %v (%.0f/s, %d retransmission timeouts), %d round trips, p50 %v",
				p.name, round, r.messages, r.elapsed.Round(time.Millisecond), r.rate(), r.rtos, len(r.rtts), r.percentile(0.5))
			results[i].messages += r.messages
			results[i].elapsed += r.elapsed
			results[i].rtts = append(results[i].rtts, r.rtts...)
			results[i].rtos += r.rtos
		}
	}
	d, p := results[0], results[1]
	us := func(x time.Duration) string { return fmt.Sprintf("%.0fµs", float64(x)/float64(time.Microsecond)) }
	ratio := func(x, y time.Duration) float64 { return float64(x) / float64(y) }
	lines := []string{
		fmt.Sprintf("%s, guest with %d CPUs, %d rounds of %v per load and path, pooled",
			time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), rounds, phase),
		fmt.Sprintf("%-28s %10s %10s %6s", "", "direct", "proxy", "ratio"),
		fmt.Sprintf("%-28s %10.0f %10.0f %6.2f", "1 KiB messages/s (64 flying)", d.rate(), p.rate(), p.rate()/d.rate()),
		fmt.Sprintf("%-28s %10s %10s %6.2f", "64 B round trip p50", us(d.percentile(0.5)), us(p.percentile(0.5)),
			ratio(p.percentile(0.5), d.percentile(0.5))),
		fmt.Sprintf("%-28s %10s %10s %6.2f", "64 B round trip p99", us(d.percentile(0.99)), us(p.percentile(0.99)),
			ratio(p.percentile(0.99), d.percentile(0.99))),
		fmt.Sprintf("%-28s %10d %10d", "messages sent", d.messages, p.messages),
		fmt.Sprintf("%-28s %10d %10d", "round trips", len(d.rtts), len(p.rtts)),
		fmt.Sprintf("%-28s %10d %10d", "1 s retransmission timeouts", d.rtos, p.rtos),
	}
	// Straight to stdout, so that the lines reach the guest console (and
	// the host's log of it) whole, without the test log's indentation.
	fmt.Print("sctp-bench: " + strings.Join(lines, "\nsctp-bench: ") + "\n")
	// The same figures as metric,case,value for examples/bench/bench.sh
	// (case ours: through the proxy).
	var csv []string
	for _, r := range []struct {
		c string
		b benchResult
	}{{"direct", d}, {"ours", p}} {
		csv = append(csv,
			fmt.Sprintf("sctp_msgs_per_s,%s,%.0f", r.c, r.b.rate()),
			fmt.Sprintf("sctp_rtt_p50_us,%s,%.1f", r.c, float64(r.b.percentile(0.5))/float64(time.Microsecond)),
			fmt.Sprintf("sctp_rtt_p99_us,%s,%.1f", r.c, float64(r.b.percentile(0.99))/float64(time.Microsecond)))
	}
	fmt.Print("sctp-bench-csv: " + strings.Join(csv, "\nsctp-bench-csv: ") + "\n")
}
