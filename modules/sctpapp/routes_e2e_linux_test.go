//go:build linux && !386

package sctpapp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// ppidShifter is an upstream that answers every message with the same
// bytes on the same stream and its PPID number plus offset, so the client
// can tell which upstream answered.
func ppidShifter(offset uint32) func(*sctpnet.Conn) {
	return func(c *sctpnet.Conn) {
		defer c.Close()
		for {
			msg, info, err := c.ReadMessage(nil)
			if err != nil {
				return
			}
			if _, err := c.WriteMsg(msg, sctpnet.Info{Stream: info.Stream, PPID: sctpnet.RawPPID(info.PPIDNumber() + offset)}); err != nil {
				return
			}
		}
	}
}

// Routes with matchers, first match wins: by arrival namespace, by the
// PPID of the first message (held, then forwarded unchanged, and the
// messages after it in order), by local port and remote IP together; an
// association no route matches is aborted.
func TestRoutesWithMatchers(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsD, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	ngap := startUpstream(t, nsU, ppidShifter(1000))
	s1ap := startUpstream(t, nsU, ppidShifter(2000))
	proxy := func(up upstream) string {
		return fmt.Sprintf(`{"handler":"proxy","dial_timeout":"20s","upstreams":[{"dial":[%q]}]}`, nsDial(nsU, up.addr))
	}
	server := fmt.Sprintf(`{"listen":[%q,%q],"routes":[
		{"match":[{"netns":[%q]}],"handle":[{"handler":"echo"}]},
		{"match":[{"ppid":[60]}],"handle":[%s]},
		{"match":[{"ppid":[18],"local_port":[38412],"remote_ip":{"ranges":["127.0.0.0/8"]}}],"handle":[%s]},
		{"match":[{"remote_ip":{"ranges":["10.0.0.0/8"]}}],"handle":[{"handler":"echo"}]}
	]}`, nsListen(nsC, "127.0.0.1:38412"), nsListen(nsD, "127.0.0.1:38412"), nsD.Name, proxy(ngap), proxy(s1ap))
	a.mustLoad(t, a.sctpConfig(map[string]string{"routed": server}, ""))

	// send sends messages with the PPIDs on c and checks the answers carry
	// the same bytes, in order, with PPID + shift.
	send := func(t *testing.T, c *sctpnet.Conn, shift uint32, ppids ...uint32) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(time.Minute))
		for i, p := range ppids {
			msg := []byte(fmt.Sprintf("message %d with PPID %d", i, p))
			if _, err := c.WriteMsg(msg, sctpnet.Info{Stream: uint16(i % 3), PPID: sctpnet.RawPPID(p)}); err != nil {
				t.Fatal(err)
			}
			got, info, err := c.ReadMessage(nil)
			if err != nil {
				t.Fatalf("answer to message %d: %v", i, err)
			}
			if string(got) != string(msg) || info.PPIDNumber() != p+shift || info.Stream != uint16(i%3) {
				t.Fatalf("answer to message %d (PPID %d, stream %d): %q PPID %d stream %d; want the same bytes with PPID %d",
					i, p, i%3, got, info.PPIDNumber(), info.Stream, p+shift)
			}
		}
	}
	t.Run("netns first", func(t *testing.T) {
		send(t, mustDial(t, nsD, "127.0.0.1:38412"), 0, 60, 60) // echo, although PPID 60 has a route after it
	})
	t.Run("ppid 60", func(t *testing.T) {
		send(t, mustDial(t, nsC, "127.0.0.1:38412"), 1000, 60, 18, 7)
	})
	t.Run("ppid 18, local port and remote IP", func(t *testing.T) {
		send(t, mustDial(t, nsC, "127.0.0.1:38412"), 2000, 18, 60, 18)
	})
	t.Run("no route", func(t *testing.T) {
		c := mustDial(t, nsC, "127.0.0.1:38412")
		if _, err := c.WriteMsg([]byte("diameter"), sctpnet.Info{PPID: sctpnet.RawPPID(46)}); err != nil {
			t.Fatal(err)
		}
		if err := readEnd(c); !errors.Is(err, sctpnet.ErrAborted) {
			t.Fatalf("association that no route matches: %v, want an abort", err)
		}
	})
}

// startAt starts a ppidShifter upstream in ns on a fixed address.
func startAt(t *testing.T, ns *sctptest.Netns, addr string, offset uint32) {
	t.Helper()
	ln, err := sctpnet.Listen(context.Background(), ns.Socket, "sctp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.AcceptConn(context.Background())
			if err != nil {
				return
			}
			go ppidShifter(offset)(c)
		}
	}()
}

// Placeholders in an upstream address: one server listening in two
// namespaces sends each association to the upstream in the namespace it
// arrived in ({sctp.netns.name}), on the port its first message's PPID
// names ({sctp.ppid}); the first message still reaches the upstream.
func TestUpstreamPlaceholders(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsD := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	startAt(t, nsC, "127.0.0.1:38560", 1000)
	startAt(t, nsD, "127.0.0.1:38560", 2000)
	startAt(t, nsD, "127.0.0.1:38518", 3000)
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"tenants": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412"), nsListen(nsD, "127.0.0.1:38412")},
			"netns/{sctp.netns.name}/sctp/127.0.0.1:385{sctp.ppid}"),
	}, ""))
	for _, tc := range []struct {
		ns          *sctptest.Netns
		ppid, shift uint32
	}{{nsC, 60, 1000}, {nsD, 60, 2000}, {nsD, 18, 3000}} {
		c := mustDial(t, tc.ns, "127.0.0.1:38412")
		c.SetReadDeadline(time.Now().Add(time.Minute))
		for i := range 2 {
			msg := []byte(fmt.Sprintf("message %d", i))
			if _, err := c.WriteMsg(msg, sctpnet.Info{PPID: sctpnet.RawPPID(tc.ppid)}); err != nil {
				t.Fatal(err)
			}
			got, info, err := c.ReadMessage(nil)
			if err != nil || string(got) != string(msg) || info.PPIDNumber() != tc.ppid+tc.shift {
				t.Fatalf("namespace %s, PPID %d, message %d: %q PPID %d (%v); want %q PPID %d",
					tc.ns.Name, tc.ppid, i, got, info.PPIDNumber(), err, msg, tc.ppid+tc.shift)
			}
		}
		c.Close()
	}
}
