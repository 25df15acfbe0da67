//go:build linux && !386

package sctpnet

import (
	"testing"
	"time"
)

// Values are multiples of 4 ms: the kernel keeps them in jiffies (HZ=250
// on Debian's cloud kernel) and rounds.

// TestTuning sets every parameter on a listener and on a dialer and reads
// them back with getsockopt from both ends of the association (an
// accepted one inherits its listener's), then changes them on the
// established association with Tune.
func TestTuning(t *testing.T) {
	lt := Tuning{RTOInitial: 700 * time.Millisecond, RTOMin: 300 * time.Millisecond, RTOMax: 5 * time.Second,
		HeartbeatInterval: 7 * time.Second, PathMaxRetrans: 3, AssocMaxRetrans: 6,
		SackDelay: 40 * time.Millisecond, SackFrequency: 4}
	dt := Tuning{RTOInitial: 900 * time.Millisecond, RTOMin: 200 * time.Millisecond, RTOMax: 4 * time.Second,
		HeartbeatInterval: -1, PathMaxRetrans: 4, AssocMaxRetrans: 8,
		SackDelay: 20 * time.Millisecond, SackFrequency: 3}
	ln := listen(t, Config{Tuning: lt, OutStreams: 7, MaxInStreams: 9, ReadBuffer: 1 << 20, MaxInitAttempts: 3, MaxInitTimeout: 2000}, nil, "sctp4", "127.0.0.1:0")
	client, server := pair(t, Config{Tuning: dt, OutStreams: 5, MaxInStreams: 6, Nagle: true, WriteBuffer: 3 << 20}, ln, "sctp4", "")
	for _, c := range []struct {
		name string
		c    *Conn
		want Tuning
	}{{"accepted", server, lt}, {"dialed", client, dt}} {
		got, err := c.c.Tuning()
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s association: tuning read back %+v, want %+v", c.name, got, c.want)
		}
	}
	so, err := server.SocketOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !so.NoDelay || so.ReadBuffer < 2<<20 || so.InitMsg.NumOstreams != 7 || so.InitMsg.MaxInstreams != 9 ||
		so.InitMsg.MaxAttempts != 3 || so.InitMsg.MaxInitTimeout != 2000 {
		t.Errorf("accepted association socket options %+v", so)
	}
	co, err := client.SocketOptions()
	if err != nil {
		t.Fatal(err)
	}
	if co.NoDelay || co.WriteBuffer < 6<<20 || co.InitMsg.NumOstreams != 5 || co.InitMsg.MaxInstreams != 6 {
		t.Errorf("dialed association socket options %+v", co)
	}
	// in: the listener's 7 outbound capped by the dialer's 6 inbound;
	// out: the dialer's 5 (the listener accepts up to 9).
	if in, out, err := client.Streams(); err != nil || in != 6 || out != 5 {
		t.Errorf("dialed association streams in %d out %d (%v), want 6/5", in, out, err)
	}

	nt := Tuning{RTOInitial: 1500 * time.Millisecond, RTOMin: 400 * time.Millisecond, RTOMax: 9 * time.Second,
		HeartbeatInterval: 11 * time.Second, PathMaxRetrans: 2, AssocMaxRetrans: 4,
		SackDelay: 100 * time.Millisecond, SackFrequency: 2}
	if err := server.Tune(nt); err != nil {
		t.Fatal(err)
	}
	if got, err := server.Tuning(); err != nil || got != nt {
		t.Errorf("after Tune: %+v %v, want %+v", got, err, nt)
	}
	// A SACK frequency of 1 turns delayed SACKs off; the kernel then
	// reports no delay.
	if err := server.Tune(Tuning{SackFrequency: 1}); err != nil {
		t.Fatal(err)
	}
	if got, err := server.Tuning(); err != nil || got.SackDelay != 0 || got.SackFrequency != 1 {
		t.Errorf("after turning delayed SACKs off: delay %v frequency %d (%v)", got.SackDelay, got.SackFrequency, err)
	}
	if err := server.Tune(Tuning{SackDelay: time.Second}); err == nil {
		t.Error("SACK delay of 1s (above 500ms): no error")
	}
}
