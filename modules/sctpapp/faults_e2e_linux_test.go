//go:build linux && !386

package sctpapp_test

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// Fault tests of the sctp proxy (issue 5), run in the guest. Each prints
// a "reliability:" summary line.

func sctpSummary(t *testing.T, property, tried string, n, failed int) {
	t.Helper()
	nstest.Summary(t, "sctp "+property, tried, n, failed)
}

// 10,000 messages each way through the proxy, across namespaces, each
// checked for size, stream, PPID, unordered flag, content and order.
func TestFaultsTenThousandMessagesEachWay(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	const n, streams = 10000, 8
	small := []int{1, 7, 64, 100, 512, 1000, 1452, 2048, 4000}
	specs := make([]spec, n)
	for i := range specs {
		specs[i] = spec{idx: i, size: small[i%len(small)], info: sctpnet.Info{
			Stream: uint16(i % streams),
			PPID:   sctpnet.RawPPID(100000 + uint32(i)),
		}}
		if i%streams == streams-1 {
			specs[i].info.Flags = sctpnet.FlagUnordered
		}
	}
	up := startUpstream(t, nsU, replier(t, specs, 1_000_000, nil))
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
	}, ""))
	c := mustDial(t, nsC, "127.0.0.1:38412")
	exchange(t, c, specs, 1_000_000, false) // fails the test on the first bad message
	sctpSummary(t, "messages", "messages each way, checked", n, 0)
}

// A client that aborts while a large message is on its way: the upstream
// never sees part of a message as a message, it sees the abort, and the
// proxy's handler ends.
func TestFaultsClientAbortMidMessage(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	conns := make(chan *sctpnet.Conn, 16)
	up := startUpstream(t, nsU, held(conns))
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
	}, ""))
	const rounds = 5
	failed := 0
	for r := range rounds {
		client := mustDial(t, nsC, "127.0.0.1:38412")
		big := make([]byte, 200<<10)
		if _, err := client.WriteMsg(big, sctpnet.Info{Stream: 1, PPID: sctpnet.RawPPID(42)}); err != nil {
			t.Fatal(err)
		}
		client.Abort()
		// The abort may reach Caddy before it dials the upstream: then the
		// upstream rightly gets no association at all.
		var server *sctpnet.Conn
		select {
		case server = <-conns:
		case <-time.After(5 * time.Second):
			t.Logf("round %d: the abort came first, no upstream association", r)
			continue
		}
		server.SetReadDeadline(time.Now().Add(30 * time.Second))
		var end error
		for {
			msg, _, err := server.ReadMessage(nil)
			if err != nil {
				end = err
				break
			}
			if len(msg) != len(big) {
				t.Errorf("round %d: upstream got a message of %d bytes, want %d or none", r, len(msg), len(big))
				failed++
			}
		}
		if !errors.Is(end, sctpnet.ErrAborted) {
			t.Errorf("round %d: upstream read ended with %v, want an abort", r, end)
			failed++
		}
		server.Close()
	}
	waitNoHandlers(t)
	sctpSummary(t, "client abort mid-message", "rounds", rounds, failed)
}

// An upstream that dies (its association aborted, its listener gone) while
// the client is sending: the client's association is aborted, the handler
// ends, and the next client is refused cleanly (aborted), not left hanging.
func TestFaultsUpstreamKilled(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	conns := make(chan *sctpnet.Conn, 1)
	var socket sctpnet.SocketFunc = nsU.Socket
	ln, err := sctpnet.Listen(t.Context(), socket, "sctp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.AcceptConn(t.Context())
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	addr := "127.0.0.1:" + portOf(ln.Addr().String())
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, addr)),
	}, ""))
	client := mustDial(t, nsC, "127.0.0.1:38412")
	if _, err := client.WriteMsg([]byte("first"), sctpnet.Info{Stream: 0, PPID: sctpnet.RawPPID(1)}); err != nil {
		t.Fatal(err)
	}
	server := <-conns
	// Kill the upstream: no more listener, and its association aborted.
	ln.Close()
	server.Abort()
	client.SetReadDeadline(time.Now().Add(30 * time.Second))
	failed := 0
	if err := readEnd(client); !errors.Is(err, sctpnet.ErrAborted) {
		t.Errorf("client read after the upstream died: %v, want an abort", err)
		failed++
	}
	next, err := dialFrom(t, nsC, "127.0.0.1:38412")
	if err == nil {
		next.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := readEnd(next); !errors.Is(err, sctpnet.ErrAborted) {
			t.Errorf("next client with no upstream: %v, want an abort", err)
			failed++
		}
		next.Close()
	} else if !errors.Is(err, sctpnet.ErrAborted) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("next client with no upstream: dial %v, want an abort", err)
		failed++
	}
	waitNoHandlers(t)
	sctpSummary(t, "upstream killed", "clients", 2, failed)
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
