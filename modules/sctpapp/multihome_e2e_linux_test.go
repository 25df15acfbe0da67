//go:build linux && !386

package sctpapp_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
)

// Multi-homing: Caddy listens on two addresses of one namespace as one
// endpoint and dials a multi-homed upstream by both of its addresses. Each
// leg has two paths on their own veth pairs; the primary path of each leg
// is taken down in the middle of a stream of messages, and every message
// still arrives, whole and in order per stream, both ways; then a new
// association is set up with the first addresses unreachable.
//
//	client ns ==(10.71.1/24, 10.71.2/24)== proxy ns ==(10.71.3/24, 10.71.4/24)== upstream ns
func TestMultihomedFailover(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsP, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	pair := func(x *sctptest.Netns, xName, xAddr string, y *sctptest.Netns, yName, yAddr string) {
		sctptest.AddVeth(t,
			sctptest.VethEnd{NS: x, Name: xName, Addrs: []netip.Prefix{netip.MustParsePrefix(xAddr)}},
			sctptest.VethEnd{NS: y, Name: yName, Addrs: []netip.Prefix{netip.MustParsePrefix(yAddr)}})
	}
	pair(nsC, "c1", "10.71.1.1/24", nsP, "p1", "10.71.1.2/24")
	pair(nsC, "c2", "10.71.2.1/24", nsP, "p2", "10.71.2.2/24")
	pair(nsP, "p3", "10.71.3.1/24", nsU, "u3", "10.71.3.2/24")
	pair(nsP, "p4", "10.71.4.1/24", nsU, "u4", "10.71.4.2/24")

	specs := makeSpecs(240, 6, 40000)
	for i := range specs {
		specs[i].size = min(specs[i].size, 20000)
	}
	// Failures are found sooner with short retransmission timeouts.
	fast := sctpnet.Tuning{RTOInitial: 300 * time.Millisecond, RTOMin: 200 * time.Millisecond, RTOMax: time.Second, PathMaxRetrans: 1}
	ln, err := sctpnet.Config{Tuning: fast}.Listen(context.Background(), nsU.Socket, "sctp4", "10.71.3.2,10.71.4.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serve := replier(t, specs, 100000, nil)
	go func() {
		for {
			c, err := ln.AcceptConn(context.Background())
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tuning := `"tuning":{"rto_initial":"300ms","rto_min":"200ms","rto_max":"1s","path_max_retransmissions":1}`
	server := fmt.Sprintf(`{"listen":[%q],%s,"routes":[{"handle":[{"handler":"proxy","dial_timeout":"20s",%s,"upstreams":[{"dial":[%q]}]}]}]}`,
		nsListen(nsP, "10.71.1.2,10.71.2.2:38412"), tuning, tuning, nsDial(nsP, "10.71.3.2,10.71.4.2:"+port))
	a.mustLoad(t, a.sctpConfig(map[string]string{"multihomed": server}, ""))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sctpnet.Config{OutStreams: clientStreams, MaxInStreams: clientStreams, Tuning: fast}.
		Dial(ctx, nsC.Socket, "sctp4", "10.71.1.2/10.71.2.2:38412")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	// The first third goes over the primary paths. Then the client leg's
	// primary path goes down between messages, and the upstream leg's
	// while the rest are in flight.
	exchange(t, c, specs[:80], 100000, false)
	if err := nsC.LinkDown("c1"); err != nil {
		t.Fatal(err)
	}
	downErr := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		downErr <- nsP.LinkDown("p3")
	}()
	exchange(t, c, specs[80:], 100000, false)
	if err := <-downErr; err != nil {
		t.Fatal(err)
	}
	t.Log("240 messages arrived with the primary paths going down (c1 in the client namespace, p3 towards the upstream)")
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := readEndEOF(c); err != nil {
		t.Error(err)
	}

	// With the first addresses unreachable, a new association is set up
	// through the second ones (sctp_connectx, the client's and Caddy's).
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c2, err := sctpnet.Config{OutStreams: clientStreams, MaxInStreams: clientStreams, Tuning: fast}.
		Dial(ctx, nsC.Socket, "sctp4", "10.71.1.2/10.71.2.2:38412")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	exchange(t, c2, specs[:40], 100000, false)
	if err := c2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := readEndEOF(c2); err != nil {
		t.Error(err)
	}
}
