package nsproxy

import (
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// connectedPair returns a UDP socket connected to a peer socket, both on
// loopback and closed when the test ends (the peer only).
func connectedPair(t *testing.T) (*net.UDPConn, *net.UDPConn) {
	t.Helper()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := net.DialUDP("udp", nil, peer.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	return c, peer
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

// A quarantined socket keeps its port, discards what it receives, and is
// closed once the hold has passed.
func TestQuarantineDiscardsThenCloses(t *testing.T) {
	held0, disc0 := quarantined.Load(), quarantineDiscarded.Load()
	q := newQuarantine(300*time.Millisecond, 10, zap.NewNop())
	c, peer := connectedPair(t)
	port := c.LocalAddr().(*net.UDPAddr).Port
	q.add(c)
	if _, err := peer.WriteTo([]byte("late reply"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late reply was not discarded", func() bool { return quarantineDiscarded.Load() == disc0+1 })
	// Its port is still taken.
	if l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err == nil {
		l.Close()
		t.Fatalf("port %d of a quarantined socket could be bound", port)
	}
	waitFor(t, "the socket was not released", func() bool { return quarantined.Load() == held0 })
	// Closed: the port is free again.
	waitFor(t, "the port is still taken", func() bool {
		l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err == nil {
			l.Close()
		}
		return err == nil
	})
}

// Beyond max sockets the oldest is closed early, which is counted and
// logged; a negative hold closes at once.
func TestQuarantineCap(t *testing.T) {
	releaseHeld()
	waitFor(t, "earlier tests' sockets were not released", func() bool { return quarantined.Load() == 0 })
	held0, early0 := quarantined.Load(), quarantineEarly.Load()
	core, logs := observer.New(zapcore.WarnLevel)
	q := newQuarantine(time.Minute, 2, zap.New(core))
	var socks []*net.UDPConn
	for range 3 {
		c, _ := connectedPair(t)
		socks = append(socks, c)
		q.add(c)
	}
	if n := quarantineEarly.Load() - early0; n != 1 {
		t.Errorf("closed early: %d, want 1", n)
	}
	if n := logs.FilterMessageSnippet("closed the oldest early").Len(); n != 1 {
		t.Errorf("%d warnings about closing early, want 1", n)
	}
	if _, err := socks[0].Write([]byte("x")); err == nil {
		t.Error("the oldest socket is still open")
	}
	waitFor(t, "quarantine does not hold 2 sockets", func() bool { return quarantined.Load() == held0+2 })
	for _, c := range socks[1:] {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Errorf("a newer socket was closed: %v", err)
		}
	}
	// Release the rest, as their hold ending would.
	releaseHeld()
	waitFor(t, "the drains did not end", func() bool { return quarantined.Load() == held0 })

	off := newQuarantine(-1, 2, zap.NewNop())
	c, _ := connectedPair(t)
	off.add(c)
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("with a negative udp_quarantine the socket is still open")
	}
}

// releaseHeld closes every socket held in quarantine, as their hold
// ending would.
func releaseHeld() {
	held.mu.Lock()
	defer held.mu.Unlock()
	for e := held.l.Front(); e != nil; e = held.l.Front() {
		held.l.Remove(e).(*net.UDPConn).Close()
	}
}

// The cap counts the sockets of every handler: each reload makes new
// handlers and new flows, and a cap per handler let a burst of reloads hold
// tens of thousands of sockets (TestZeroDropReloads ran out of descriptors).
func TestQuarantineCapIsProcessWide(t *testing.T) {
	releaseHeld()
	waitFor(t, "earlier tests' sockets were not released", func() bool { return quarantined.Load() == 0 })
	early0 := quarantineEarly.Load()
	a := newQuarantine(time.Minute, 2, zap.NewNop())
	b := newQuarantine(time.Minute, 2, zap.NewNop()) // another handler, or the next config's
	for _, q := range []*quarantine{a, a, b, b} {
		c, _ := connectedPair(t)
		q.add(c)
	}
	if n := quarantineEarly.Load() - early0; n != 2 {
		t.Errorf("closed early: %d, want 2 (4 sockets held by two handlers, at most 2 in the process)", n)
	}
	waitFor(t, "quarantine does not hold 2 sockets", func() bool { return quarantined.Load() == 2 })
	releaseHeld()
	waitFor(t, "the drains did not end", func() bool { return quarantined.Load() == 0 })
}
