package sctprelay_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
)

func TestForwardedKeepsStreamPPIDAndUnorderedOnly(t *testing.T) {
	in := sctpnet.Info{Stream: 7, PPID: 0x01020304, Flags: sctpnet.FlagUnordered | 0x8, Context: 9, SSN: 3, TSN: 4, CumTSN: 5, AssocID: 6}
	want := sctpnet.Info{Stream: 7, PPID: 0x01020304, Flags: sctpnet.FlagUnordered}
	if got := sctprelay.Forwarded(in); got != want {
		t.Errorf("Forwarded(%+v) = %+v, want %+v", in, got, want)
	}
}

// pair returns both ends of a new association on loopback.
func pair(t *testing.T) (dialed, accepted *sctpnet.Conn) {
	t.Helper()
	ln, err := sctpnet.Listen(context.Background(), nil, "sctp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acc := make(chan *sctpnet.Conn, 1)
	go func() {
		c, _ := ln.AcceptConn(ctx)
		acc <- c
	}()
	dialed, err = sctpnet.Dial(ctx, nil, "sctp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted = <-acc
	if accepted == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { dialed.Close(); accepted.Close() })
	return dialed, accepted
}

// relayed sets up client ⇄ (a Relay b) ⇄ server and returns the outer
// ends and the Relay's result.
func relayed(t *testing.T) (client, server *sctpnet.Conn, result <-chan sctprelay.Result) {
	client, a := pair(t)
	b, server := pair(t)
	res := make(chan sctprelay.Result, 1)
	go func() { res <- sctprelay.Relay(a, b) }()
	return client, server, res
}

func read(t *testing.T, c *sctpnet.Conn) ([]byte, sctpnet.Info, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c.ReadMessage(nil)
}

func wait(t *testing.T, res <-chan sctprelay.Result) sctprelay.Result {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Relay did not return:\n%s", buf[:runtime.Stack(buf, true)])
	}
	return sctprelay.Result{}
}

func TestRelay(t *testing.T) {
	sctptest.RequireSCTP(t)

	t.Run("messages both ways, then a graceful end", func(t *testing.T) {
		client, server, res := relayed(t)
		big := make([]byte, 150000)
		for i := range big {
			big[i] = byte(i * 13)
		}
		info := sctpnet.Info{Stream: 3, PPID: sctpnet.RawPPID(0x01020304), Flags: sctpnet.FlagUnordered}
		if _, err := client.WriteMsg(big, info); err != nil {
			t.Fatal(err)
		}
		msg, got, err := read(t, server)
		if err != nil || len(msg) != len(big) || got.Stream != 3 || got.PPIDNumber() != 0x01020304 || !got.Unordered() {
			t.Fatalf("server read %d bytes %+v %v", len(msg), got, err)
		}
		if _, err := server.WriteMsg([]byte("x"), sctpnet.Info{Stream: 2, PPID: sctpnet.RawPPID(46)}); err != nil {
			t.Fatal(err)
		}
		msg, got, err = read(t, client)
		if err != nil || string(msg) != "x" || got.Stream != 2 || got.PPIDNumber() != 46 || got.Unordered() {
			t.Fatalf("client read %q %+v %v", msg, got, err)
		}
		client.Shutdown()
		if _, _, err := read(t, server); !errors.Is(err, io.EOF) {
			t.Errorf("server read %v, want io.EOF", err)
		}
		r := wait(t, res)
		if r.Err != nil || r.AToB.Messages != 1 || r.AToB.Bytes != int64(len(big)) || r.BToA.Messages != 1 {
			t.Errorf("result %+v", r)
		}
	})

	t.Run("an abort is passed on", func(t *testing.T) {
		client, server, res := relayed(t)
		server.Abort()
		if _, _, err := read(t, client); !errors.Is(err, sctpnet.ErrAborted) {
			t.Errorf("client read %v, want an abort", err)
		}
		if r := wait(t, res); !errors.Is(r.Err, sctpnet.ErrAborted) || r.Failed != sctprelay.SideB {
			t.Errorf("result error %v on side %d, want an abort on side b (%d)", r.Err, r.Failed, sctprelay.SideB)
		}
	})

	t.Run("an abort by the client is side a's", func(t *testing.T) {
		client, server, res := relayed(t)
		client.Abort()
		if _, _, err := read(t, server); !errors.Is(err, sctpnet.ErrAborted) {
			t.Errorf("server read %v, want an abort", err)
		}
		if r := wait(t, res); !errors.Is(r.Err, sctpnet.ErrAborted) || r.Failed != sctprelay.SideA {
			t.Errorf("result error %v on side %d, want an abort on side a (%d)", r.Err, r.Failed, sctprelay.SideA)
		}
	})

	t.Run("live counters", func(t *testing.T) {
		client, a := pair(t)
		b, server := pair(t)
		live := new(sctprelay.Live)
		res := make(chan sctprelay.Result, 1)
		go func() { res <- sctprelay.RelayLive(a, b, live) }()
		for range 3 {
			if _, err := client.WriteMsg([]byte("four"), sctpnet.Info{Stream: 1}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := read(t, server); err != nil {
				t.Fatal(err)
			}
		}
		// The relay counts a message once its write has returned, which
		// can be just after the server has read it: wait for the count.
		st := live.AToB.Stats()
		for deadline := time.Now().Add(5 * time.Second); (st.Messages != 3 || st.Bytes != 12) && time.Now().Before(deadline); st = live.AToB.Stats() {
			time.Sleep(time.Millisecond)
		}
		if st.Messages != 3 || st.Bytes != 12 {
			t.Errorf("while relaying: a to b %+v, want 3 messages, 12 bytes", st)
		}
		client.Shutdown()
		if r := wait(t, res); r.AToB != live.AToB.Stats() || r.Failed != sctprelay.SideNone {
			t.Errorf("result %+v, live %+v", r, live.AToB.Stats())
		}
	})
}

func TestEcho(t *testing.T) {
	sctptest.RequireSCTP(t)
	client, srv := pair(t)
	done := make(chan error, 1)
	go func() { done <- sctprelay.Echo(srv) }()
	info := sctpnet.Info{Stream: 5, PPID: sctpnet.RawPPID(60)}
	if _, err := client.WriteMsg([]byte("ping"), info); err != nil {
		t.Fatal(err)
	}
	msg, got, err := read(t, client)
	if err != nil || string(msg) != "ping" || got.Stream != 5 || got.PPIDNumber() != 60 {
		t.Fatalf("echo %q %+v %v", msg, got, err)
	}
	client.Shutdown()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Echo after a graceful end: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Echo did not return")
	}
}
