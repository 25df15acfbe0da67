//go:build linux && !386

package sctpnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/ishidawataru/sctp"
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

// TestLinkLocalZones listens and dials on IPv6 link-local addresses whose
// zones name interfaces of the namespaces the sockets live in, not of the
// test's own namespace: b's interface has another name and another index
// than a's, and neither exists here. The peer addresses come back with the
// zone as each socket's namespace names it.
func TestLinkLocalZones(t *testing.T) {
	sctptest.RequireSCTP(t)
	a := sctptest.NewNetns(t, "")
	b := sctptest.NewNetns(t, "")
	// A spare pair in b first, so that b's link gets another index than a's.
	sctptest.AddVeth(t, sctptest.VethEnd{NS: b, Name: "spare0"}, sctptest.VethEnd{NS: b, Name: "spare1"})
	sctptest.AddVeth(t,
		sctptest.VethEnd{NS: a, Name: "llzonea", Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::a:1/64"), netip.MustParsePrefix("fd00:98:1::1/64")}},
		sctptest.VethEnd{NS: b, Name: "llzoneb", Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::a:2/64"), netip.MustParsePrefix("fd00:98:1::2/64")}},
	)
	ctx := testContext(t, 60*time.Second)
	for _, c := range []struct{ name, listen, dial string }{
		{"single", "[fe80::a:2%llzoneb]:0", "[fe80::a:2%llzonea]"},
		{"multi-homed", "[fe80::a:2%llzoneb]/[fd00:98:1::2]:0", "[fd00:98:1::2]/[fe80::a:2%llzonea]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := Config{}.Listen(ctx, b.Socket, "sctp6", c.listen)
			if err != nil {
				t.Fatalf("listen in b on %s: %v", c.listen, err)
			}
			defer ln.Close()
			port := ln.Addr().(*sctp.SCTPAddr).Port
			type accepted struct {
				c   *Conn
				err error
			}
			ch := make(chan accepted, 1)
			go func() {
				c, err := ln.AcceptConn(ctx)
				ch <- accepted{c, err}
			}()
			dial := fmt.Sprintf("%s:%d", c.dial, port)
			client, err := Dial(ctx, a.Socket, "sctp6", dial)
			if err != nil {
				t.Fatalf("dial %s from a: %v", dial, err)
			}
			defer client.Close()
			acc := <-ch
			if acc.err != nil {
				t.Fatal(acc.err)
			}
			server := acc.c
			defer server.Close()
			if _, err := client.WriteMsg([]byte("ping"), Info{Stream: 1}); err != nil {
				t.Fatal(err)
			}
			msg, _, err := server.ReadMessage(nil)
			if err != nil || string(msg) != "ping" {
				t.Fatalf("read %q, %v", msg, err)
			}
			for _, e := range []struct {
				what string
				addr net.Addr
				want string
			}{
				{"server RemoteAddr", server.RemoteAddr(), "llzoneb"},
				{"server LocalAddr", server.LocalAddr(), "llzoneb"},
				{"client LocalAddr", client.LocalAddr(), "llzonea"},
			} {
				zones := linkLocalZones(e.addr)
				if e.what == "server RemoteAddr" && c.name != "single" {
					continue // the primary peer address may be the other one
				}
				if len(zones) == 0 {
					t.Errorf("%s %v: no link-local address", e.what, e.addr)
				}
				for _, z := range zones {
					if z != e.want {
						t.Errorf("%s %v: zone %q, want %q (the interface as its socket's namespace names it)", e.what, e.addr, z, e.want)
					}
				}
			}
		})
	}
}

// linkLocalZones returns the zones of a's link-local addresses.
func linkLocalZones(a net.Addr) []string {
	var zones []string
	if sa, ok := a.(*sctp.SCTPAddr); ok {
		for _, x := range sa.IPAddrs {
			if x.IP.IsLinkLocalUnicast() {
				zones = append(zones, x.Zone)
			}
		}
	}
	return zones
}
