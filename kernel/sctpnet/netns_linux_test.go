//go:build linux && !386

package sctpnet

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

// twoNamespaces makes namespaces a and b joined by a veth pair:
// a has 10.99.1.1/24 and fd00:99:1::1/64, b has .2 and ::2.
func twoNamespaces(t *testing.T) (a, b *sctptest.Netns) {
	t.Helper()
	sctptest.RequireSCTP(t)
	a = sctptest.NewNetns(t, "")
	b = sctptest.NewNetns(t, "")
	sctptest.AddVeth(t,
		sctptest.VethEnd{NS: a, Name: "va", Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.1.1/24"), netip.MustParsePrefix("fd00:99:1::1/64")}},
		sctptest.VethEnd{NS: b, Name: "vb", Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.1.2/24"), netip.MustParsePrefix("fd00:99:1::2/64")}},
	)
	return a, b
}

// TestNamespaces creates the sockets inside network namespaces through
// SocketFunc and talks across a veth pair, over IPv4 and IPv6.
func TestNamespaces(t *testing.T) {
	a, b := twoNamespaces(t)
	ctx := testContext(t, 30*time.Second)
	ln := listen(t, Config{}, b.Socket, "sctp", ":0")
	for _, host := range []string{"10.99.1.2", "fd00:99:1::2"} {
		errc := make(chan error, 1)
		go func() {
			c, err := ln.AcceptConn(ctx)
			if err == nil {
				var msg []byte
				var info Info
				if msg, info, err = c.ReadMessage(nil); err == nil {
					_, err = c.WriteMsg(msg, info) // echo
				}
				defer c.Close()
			}
			errc <- err
		}()
		c, err := Dial(ctx, a.Socket, "sctp", dialAddr(ln, host))
		if err != nil {
			t.Fatalf("dial %s from namespace a: %v", host, err)
		}
		defer c.Close()
		want := payload(5, 100000)
		if _, err := c.WriteMsg(want, Info{Stream: 9, PPID: RawPPID(60)}); err != nil {
			t.Fatal(err)
		}
		msg, info, err := c.ReadMessage(nil)
		if err != nil || len(msg) != len(want) || info.Stream != 9 || info.PPIDNumber() != 60 {
			t.Fatalf("echo across the veth: %d bytes %+v %v", len(msg), info, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}

	// A listener on 127.0.0.1 inside b is not reachable from this namespace.
	lo := listen(t, Config{}, b.Socket, "sctp4", "127.0.0.1:0")
	if c, err := Dial(ctx, nil, "sctp4", dialAddr(lo, "")); err == nil {
		c.Close()
		t.Error("listener in namespace b reachable from the test's namespace")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial b's loopback from outside: %v", err)
	}
	c, err := Dial(ctx, b.Socket, "sctp4", dialAddr(lo, ""))
	if err != nil {
		t.Fatalf("dial b's loopback from b: %v", err)
	}
	c.Close()
}

// TestDialTimeout dials an address on the veth subnet that nobody has:
// the INIT goes unanswered and the context's deadline ends the dial.
func TestDialTimeout(t *testing.T) {
	a, _ := twoNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := Dial(ctx, a.Socket, "sctp4", "10.99.1.3:2905")
	if err == nil {
		c.Close()
		t.Fatal("dial to a black hole succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial to a black hole: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("dial returned %v after its 300ms deadline", d)
	}
}
