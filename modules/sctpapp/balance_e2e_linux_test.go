//go:build linux && !386

package sctpapp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/modules/sctpapp"
)

// listenAt is an upstream at addr in ns (port 0: any) that counts the
// associations it accepts and hands them to serve; close stops it.
type testUpstream struct {
	addr     string
	accepted atomic.Int32
	ln       *sctpnet.Listener
}

func listenAt(t *testing.T, ns *sctptest.Netns, addr string, serve func(*sctpnet.Conn)) *testUpstream {
	t.Helper()
	ln, err := sctpnet.Listen(context.Background(), ns.Socket, "sctp", addr)
	for i := 0; err != nil && errors.Is(err, syscall.EADDRINUSE) && i < 60; i++ {
		// The port's last associations are still shutting down.
		time.Sleep(time.Second)
		ln, err = sctpnet.Listen(context.Background(), ns.Socket, "sctp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	u := &testUpstream{addr: "127.0.0.1:" + port, ln: ln}
	go func() {
		for {
			c, err := ln.AcceptConn(context.Background())
			if err != nil {
				return
			}
			u.accepted.Add(1)
			go serve(c)
		}
	}()
	return u
}

// aborter aborts every association when its first message arrives (an
// abort right after the accept can reach the proxy before its connect has
// completed, which makes it a failed dial instead).
func aborter(c *sctpnet.Conn) {
	c.SetReadDeadline(time.Now().Add(time.Minute))
	c.ReadMessage(nil)
	c.Abort()
	c.Close()
}

// answeredBy sends one message with PPID 5 on c and returns the PPID shift
// of the answer, which names the ppidShifter upstream that answered.
func answeredBy(t *testing.T, c *sctpnet.Conn) (uint32, error) {
	t.Helper()
	if _, err := c.WriteMsg([]byte("which upstream?"), sctpnet.Info{Stream: 1, PPID: sctpnet.RawPPID(5)}); err != nil {
		return 0, err
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, info, err := c.ReadMessage(nil)
	if err != nil {
		return 0, err
	}
	return info.PPIDNumber() - 5, nil
}

// balancedServer is the JSON of a server on listen proxying to upstreams
// (one dial address each) with the proxy options extra.
func balancedServer(listen string, extra string, dials ...string) string {
	var us []string
	for _, d := range dials {
		us = append(us, fmt.Sprintf(`{"dial":[%q]}`, d))
	}
	return fmt.Sprintf(`{"listen":[%q],"routes":[{"handle":[{"handler":"proxy","dial_timeout":"20s",%s"upstreams":[%s]}]}]}`,
		listen, extra, strings.Join(us, ","))
}

// metric returns the value of the metric line that starts with name{labels}
// on the admin /metrics endpoint, 0 when there is none.
func metric(t *testing.T, a *admin, series string) float64 {
	t.Helper()
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// Round robin spreads associations over the upstreams one by one;
// least_associations sends each new association to the least busy one;
// client_ip_hash keeps a client address on one upstream.
func TestProxyRoundRobin(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	var dials []string
	for i := range 3 {
		dials = append(dials, nsDial(nsU, listenAt(t, nsU, "127.0.0.1:0", ppidShifter(uint32(1000*(i+1)))).addr))
	}
	for _, policy := range []string{"round_robin", "least_associations"} {
		t.Run(policy, func(t *testing.T) {
			a.mustLoad(t, a.sctpConfig(map[string]string{
				"rr": balancedServer(nsListen(nsC, "127.0.0.1:38412"), `"load_balancing":{"selection":"`+policy+`"},`, dials...),
			}, ""))
			tally := map[uint32]int{}
			for i := range 6 {
				c := mustDial(t, nsC, "127.0.0.1:38412") // held open to the end
				shift, err := answeredBy(t, c)
				if err != nil {
					t.Fatalf("association %d: %v", i, err)
				}
				tally[shift]++
			}
			if tally[1000] != 2 || tally[2000] != 2 || tally[3000] != 2 {
				t.Errorf("6 associations went to upstreams %v (by PPID shift), want 2 each", tally)
			}
		})
	}
	// client_ip_hash: every association of one client address goes to the
	// same upstream.
	t.Run("client_ip_hash", func(t *testing.T) {
		a.mustLoad(t, a.sctpConfig(map[string]string{
			"rr": balancedServer(nsListen(nsC, "127.0.0.1:38412"), `"load_balancing":{"selection":"client_ip_hash"},`, dials...),
		}, ""))
		tally := map[uint32]int{}
		for i := range 4 {
			shift, err := answeredBy(t, mustDial(t, nsC, "127.0.0.1:38412"))
			if err != nil {
				t.Fatalf("association %d: %v", i, err)
			}
			tally[shift]++
		}
		if len(tally) != 1 {
			t.Errorf("4 associations from one address went to upstreams %v (by PPID shift), want one", tally)
		}
	})
}

// Passive health checks: an upstream that aborts an association soon
// after it started is skipped for fail_duration, then tried again; an
// upstream that refuses the dial is skipped too, and the association it
// refused goes to the next one.
func TestProxyPassiveHealth(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	bad := listenAt(t, nsU, "127.0.0.1:0", aborter)
	good := listenAt(t, nsU, "127.0.0.1:0", ppidShifter(1000))
	passive := `"health_checks":{"passive":{"fail_duration":"15s","max_fails":1,"abort_within":"30s"}},`

	t.Run("aborts", func(t *testing.T) {
		a.mustLoad(t, a.sctpConfig(map[string]string{
			"passive": balancedServer(nsListen(nsC, "127.0.0.1:38412"), passive, nsDial(nsU, bad.addr), nsDial(nsU, good.addr)),
		}, ""))
		c := mustDial(t, nsC, "127.0.0.1:38412")
		if _, err := answeredBy(t, c); !errors.Is(err, sctpnet.ErrAborted) {
			t.Fatalf("first association: %v, want the abort of the first upstream", err)
		}
		failedAt := time.Now()
		for i := range 3 {
			shift, err := answeredBy(t, mustDial(t, nsC, "127.0.0.1:38412"))
			if err != nil || shift != 1000 {
				t.Fatalf("association %d after the abort: shift %d, %v; want the healthy upstream (1000)", i, shift, err)
			}
		}
		if n := bad.accepted.Load(); n != 1 {
			t.Errorf("the aborting upstream got %d associations, want 1: it was not skipped", n)
		}
		if since := time.Since(failedAt); since > 15*time.Second {
			t.Logf("the checks took %v, longer than fail_duration: skipping is not shown", since)
		}
		// Recovery: after fail_duration the upstream is tried again.
		deadline := time.Now().Add(2 * time.Minute)
		for bad.accepted.Load() == 1 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			c, err := dialFrom(t, nsC, "127.0.0.1:38412")
			if err == nil {
				answeredBy(t, c)
				c.Close()
			}
		}
		if n := bad.accepted.Load(); n != 2 {
			t.Errorf("the aborting upstream got %d associations, want a second one after fail_duration", n)
		}
	})

	t.Run("refused dials", func(t *testing.T) {
		dead := nsDial(nsU, "127.0.0.1:9") // nothing listens there
		a.mustLoad(t, a.sctpConfig(map[string]string{
			"refused": balancedServer(nsListen(nsC, "127.0.0.1:38412"), passive, dead, nsDial(nsU, good.addr)),
		}, ""))
		series := fmt.Sprintf(`caddy_sctp_upstream_dial_failures_total{server="refused",upstream=%q}`, dead)
		for i := range 4 {
			shift, err := answeredBy(t, mustDial(t, nsC, "127.0.0.1:38412"))
			if err != nil || shift != 1000 {
				t.Fatalf("association %d: shift %d, %v; want the healthy upstream (1000)", i, shift, err)
			}
		}
		if n := metric(t, a, series); n != 1 {
			t.Errorf("%s = %v after 4 associations, want 1: the refusing upstream was not skipped", series, n)
		}
	})
}

// Active health checks: an upstream whose listener is gone is marked down
// and no longer dialed for associations; when it listens again it is
// marked up and takes associations again.
func TestProxyActiveHealth(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	first := listenAt(t, nsU, "127.0.0.1:0", ppidShifter(1000))
	second := listenAt(t, nsU, "127.0.0.1:0", ppidShifter(2000))
	active := `"health_checks":{"active":{"interval":"1s","timeout":"10s","fails":1,"passes":1}},`
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"active": balancedServer(nsListen(nsC, "127.0.0.1:38412"), active, nsDial(nsU, first.addr), nsDial(nsU, second.addr)),
	}, ""))
	c1 := mustDial(t, nsC, "127.0.0.1:38412")
	if shift, err := answeredBy(t, c1); err != nil || shift != 1000 {
		t.Fatalf("with both up: shift %d, %v; want the first upstream (1000)", shift, err)
	}
	c1.Shutdown()
	readEnd(c1)
	checksBefore := first.accepted.Load()

	first.ln.Close()
	series := fmt.Sprintf(`caddy_sctp_upstream_dial_failures_total{server="active",upstream=%q}`, nsDial(nsU, first.addr))
	// Wait for a check to mark it down: associations still reach the
	// second upstream meanwhile (failing over), and once the first is
	// down its dial failures stop growing.
	deadline := time.Now().Add(2 * time.Minute)
	down := false
	for !down && time.Now().Before(deadline) {
		time.Sleep(3 * time.Second)
		before := metric(t, a, series)
		for i := range 3 {
			shift, err := answeredBy(t, mustDial(t, nsC, "127.0.0.1:38412"))
			if err != nil || shift != 2000 {
				t.Fatalf("association %d with the first upstream gone: shift %d, %v; want the second (2000)", i, shift, err)
			}
		}
		down = metric(t, a, series) == before
	}
	if !down {
		t.Fatalf("after 2 minutes the gone upstream is still dialed (%s = %v)", series, metric(t, a, series))
	}
	t.Logf("the first upstream is down (%d checks reached it before)", checksBefore)

	again := listenAt(t, nsU, first.addr, ppidShifter(3000)) // the same address, a new answer
	deadline = time.Now().Add(2 * time.Minute)
	var shift uint32
	for shift != 3000 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		var err error
		if shift, err = answeredBy(t, mustDial(t, nsC, "127.0.0.1:38412")); err != nil {
			t.Fatal(err)
		}
	}
	if shift != 3000 {
		t.Fatalf("after 2 minutes the upstream listening again takes no associations (last answer shift %d)", shift)
	}
	if again.accepted.Load() < 2 {
		t.Errorf("the upstream listening again got %d associations, want a check and the association", again.accepted.Load())
	}
}

// GET /sctp/associations lists the live associations with their
// namespace, addresses, streams, upstream and counts, in pages; the
// caddy_sctp_* metrics count them per server and upstream.
func TestAssociationsAdmin(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	up := listenAt(t, nsU, "127.0.0.1:0", ppidShifter(1000))
	dial := nsDial(nsU, up.addr)
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"obs": balancedServer(nsListen(nsC, "127.0.0.1:38413"), "", dial),
	}, ""))
	var clients []*sctpnet.Conn
	for range 3 {
		c := mustDial(t, nsC, "127.0.0.1:38413")
		for range 2 {
			if _, err := answeredBy(t, c); err != nil {
				t.Fatal(err)
			}
		}
		clients = append(clients, c)
	}
	list := func(query string) sctpapp.AssociationList {
		t.Helper()
		resp, err := http.Get(a.URL + "/sctp/associations" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l sctpapp.AssociationList
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /sctp/associations%s: %s", query, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	var mine []sctpapp.AssociationInfo
	var pages int
	for after := uint64(0); ; pages++ {
		l := list("?limit=2&after=" + strconv.FormatUint(after, 10))
		if len(l.Associations) > 2 {
			t.Fatalf("limit=2 gave %d associations", len(l.Associations))
		}
		for _, ai := range l.Associations {
			if ai.Server == "obs" {
				mine = append(mine, ai)
			}
		}
		if l.NextAfter == 0 {
			break
		}
		after = l.NextAfter
	}
	if len(mine) != 3 || pages < 1 {
		t.Fatalf("listed %d associations of server obs in %d pages, want 3 in 2 or more: %+v", len(mine), pages+1, mine)
	}
	for _, ai := range mine {
		if ai.Namespace != nsC.Name || ai.Upstream != dial || ai.Target != dial ||
			ai.StreamsIn != clientStreams || ai.StreamsOut != clientStreams ||
			ai.MessagesUp != 2 || ai.MessagesDown != 2 || ai.BytesUp != 30 || ai.BytesDown != 30 ||
			!strings.HasPrefix(ai.Local, "127.0.0.1:38413") || !strings.HasPrefix(ai.Remote, "127.0.0.1:") {
			t.Errorf("association %+v; want netns %s, upstream and target %s, %d streams each way, 2 messages of 15 bytes each way",
				ai, nsC.Name, dial, clientStreams)
		}
	}
	if resp, err := http.Get(a.URL + "/sctp/associations?limit=0"); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /sctp/associations?limit=0: %s, want 400 Bad Request", resp.Status)
	}

	upLabels := fmt.Sprintf(`{server="obs",upstream=%q}`, dial)
	for series, want := range map[string]float64{
		`caddy_sctp_associations_open{server="obs"}`:                                              3,
		`caddy_sctp_associations_total{server="obs"}`:                                             3,
		"caddy_sctp_upstream_associations_open" + upLabels:                                        3,
		`caddy_sctp_upstream_messages_total{direction="up",server="obs",upstream="` + dial + `"}`: 6,
		`caddy_sctp_upstream_bytes_total{direction="down",server="obs",upstream="` + dial + `"}`:  90,
	} {
		if got := metric(t, a, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	clients[0].Abort()
	for _, c := range clients[1:] {
		c.Shutdown()
		readEnd(c)
	}
	waitNoHandlers(t)
	for series, want := range map[string]float64{
		`caddy_sctp_associations_open{server="obs"}`:                                                0,
		`caddy_sctp_aborts_total{server="obs"}`:                                                     1,
		"caddy_sctp_upstream_associations_total" + upLabels:                                         3,
		"caddy_sctp_upstream_aborts_total" + upLabels:                                               1,
		`caddy_sctp_upstream_messages_total{direction="down",server="obs",upstream="` + dial + `"}`: 6,
	} {
		if got := metric(t, a, series); got != want {
			t.Errorf("after the associations ended: %s = %v, want %v", series, got, want)
		}
	}
	for _, ai := range list("?limit=1000").Associations {
		if ai.Server == "obs" {
			t.Errorf("ended association still listed: %+v", ai)
		}
	}
}

// Health is kept per resolved target: with an upstream address that names
// the arrival namespace, one tenant's failing core marks only that
// tenant's target down, and another tenant's core at the same address in
// its own namespace keeps taking associations.
func TestProxyHealthPerTenant(t *testing.T) {
	a := requireGuestSetup(t)
	nsA, nsB, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	badA := listenAt(t, nsA, "127.0.0.1:0", aborter)
	_, port, _ := net.SplitHostPort(badA.addr)
	goodB := listenAt(t, nsB, badA.addr, ppidShifter(1000)) // the same address in B
	fallback := listenAt(t, nsU, "127.0.0.1:0", ppidShifter(2000))
	passive := `"health_checks":{"passive":{"fail_duration":"1m","abort_within":"1m"}},`
	server := fmt.Sprintf(`{"listen":[%q,%q],"routes":[{"handle":[{"handler":"proxy","dial_timeout":"20s",%s"upstreams":[{"dial":[%q]},{"dial":[%q]}]}]}]}`,
		nsListen(nsA, "127.0.0.1:38412"), nsListen(nsB, "127.0.0.1:38412"), passive,
		"netns/{sctp.netns.name}/sctp/127.0.0.1:"+port, nsDial(nsU, fallback.addr))
	a.mustLoad(t, a.sctpConfig(map[string]string{"tenants": server}, ""))

	if _, err := answeredBy(t, mustDial(t, nsA, "127.0.0.1:38412")); !errors.Is(err, sctpnet.ErrAborted) {
		t.Fatalf("tenant A's first association: %v, want the abort of A's core", err)
	}
	for i := range 2 {
		if shift, err := answeredBy(t, mustDial(t, nsB, "127.0.0.1:38412")); err != nil || shift != 1000 {
			t.Fatalf("tenant B association %d: shift %d, %v; want B's own core (1000): A's failure marked B's target down", i, shift, err)
		}
		if shift, err := answeredBy(t, mustDial(t, nsA, "127.0.0.1:38412")); err != nil || shift != 2000 {
			t.Fatalf("tenant A association %d: shift %d, %v; want the fallback (2000) while A's core is down", i, shift, err)
		}
	}
	if n, m := badA.accepted.Load(), goodB.accepted.Load(); n != 1 || m != 2 {
		t.Errorf("A's core got %d associations (want 1), B's %d (want 2)", n, m)
	}
}
