package nsproxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// A UDP flow ends idle_timeout after its client's last datagram, whether or
// not the upstream still owes a reply. A reply later than that must not
// reach whichever flow is given the ended flow's upstream port next: that
// flow may be another tenant's. Here the backend's namespace has one
// ephemeral port, so every upstream socket gets the same one; tenant A
// asks a slow question (answered after its flow ended), then tenant B's
// flow keeps asking fast ones through the same route. No datagram may reach
// a flow that did not ask for it; B must still be served; and once the
// flows have ended and their sockets' quarantine is over, goroutines and
// file descriptors are back where they were.
func TestUDPLateReplyStaysWithItsFlow(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	a, b, be := nss[0], nss[1], nss[2]
	nstest.Run(t, "ip", "netns", "exec", be, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40000")

	const (
		idle  = time.Second     // the server's idle_timeout
		delay = 3 * time.Second // how late the backend answers "slow" questions
	)
	slow := startSlowBackend(t, be, "127.0.0.1:9000", delay)
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"udp": fmt.Sprintf(`{"listen":["netns/%s/udp/127.0.0.1:8000","netns/%s/udp/127.0.0.1:8000"],"idle_timeout":%q,`+
			`"routes":[{"handle":[{"handler":"netns_proxy","upstreams":[{"dial":"netns/%s/udp/127.0.0.1:9000"}]}]}]}`,
			a, b, idle, be),
	}), "json")
	// The listeners and the backend are up: this is the baseline, once
	// what the load left running has ended.
	time.Sleep(time.Second)
	fds0, gor0 := openFDs(t), runtime.NumGoroutine()
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		fds0, gor0 = min(fds0, openFDs(t)), min(gor0, runtime.NumGoroutine())
	}
	discarded0 := metric(t, admin, "caddy_netns_udp_late_datagrams_discarded_total")

	var misdirected, served atomic.Int64
	round := func(i int, slowNS, fastNS string) {
		// The slow question; its flow idles out before the answer.
		// Until a port is free (the previous round's flow may still hold
		// it), the proxy cannot forward it: ask again until the backend
		// has the question.
		sc := flowClient(t, slowNS, fmt.Sprintf("slow %s r%d", slowNS, i), &misdirected)
		before := slow.asked.Load()
		for end := time.Now().Add(60 * time.Second); slow.asked.Load() == before; {
			if time.Now().After(end) {
				t.Fatalf("round %d: the slow question from %s did not reach the backend within 60s", i, slowNS)
			}
			if _, err := fmt.Fprintf(sc.c, "%s\n", sc.prefix); err != nil {
				t.Fatalf("round %d: sending from %s: %v", i, slowNS, err)
			}
			for k := 0; k < 10 && slow.asked.Load() == before; k++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
		asked := time.Now()
		time.Sleep(idle + idle/2)
		// Another tenant's flow, busy until well after the late answer was
		// sent; it is served once a port is free.
		fc := flowClient(t, fastNS, fmt.Sprintf("fast %s r%d", fastNS, i), &misdirected)
		deadline := time.Now().Add(60 * time.Second)
		for k := 0; time.Now().Before(deadline); k++ {
			if fc.got.Load() >= 3 && time.Since(asked) > delay+2*idle {
				break
			}
			if _, err := fmt.Fprintf(fc.c, "%s #%d\n", fc.prefix, k); err != nil {
				t.Fatalf("round %d: sending from %s: %v", i, fastNS, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if fc.got.Load() == 0 {
			t.Errorf("round %d: the flow from %s got no answer within 60s", i, fastNS)
		}
		served.Add(fc.got.Load())
		sc.close()
		fc.close()
	}
	round(1, a, b)
	round(2, b, a)

	late := slow.late.Load()
	line := fmt.Sprintf("reliability: udp late replies to another flow: %d, misdirected: %d", late, misdirected.Load())
	t.Log(line)
	fmt.Println(line)
	if late == 0 {
		t.Error("the backend sent no late answer: the test proves nothing")
	}
	if n := misdirected.Load(); n > 0 {
		t.Errorf("%d datagrams reached a flow that did not ask for them (%d late answers sent)", n, late)
	}

	// Flows idle out, their upstream sockets leave quarantine: nothing is
	// left behind, and every late answer was read and discarded there.
	var fds1, gor1 int
	var held int64
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		fds1, gor1 = openFDs(t), runtime.NumGoroutine()
		held = metric(t, admin, "caddy_netns_udp_quarantine_sockets")
		if fds1 <= fds0 && gor1 <= gor0 && held <= 0 {
			break
		}
	}
	t.Logf("after the flows and the quarantine: goroutines %d -> %d, fds %d -> %d, sockets in quarantine %d",
		gor0, gor1, fds0, fds1, held)
	if fds1 > fds0 || gor1 > gor0 || held > 0 {
		t.Errorf("60s after the flows ended: goroutines %d -> %d, fds %d -> %d, sockets in quarantine %d",
			gor0, gor1, fds0, fds1, held)
	}
	if discarded1 := metric(t, admin, "caddy_netns_udp_late_datagrams_discarded_total"); discarded0 < 0 || discarded1 < 0 || held < 0 {
		t.Error("/metrics lacks caddy_netns_udp_late_datagrams_discarded_total or caddy_netns_udp_quarantine_sockets")
	} else if n := discarded1 - discarded0; n < late {
		t.Errorf("quarantine discarded %d datagrams; the backend sent %d late answers", n, late)
	}
}

// metric returns the value of an unlabelled metric on the admin /metrics
// endpoint; -1 when it is not there (then the caller fails).
func metric(t *testing.T, admin *e2e.Admin, name string) int64 {
	t.Helper()
	// No connection is kept: the test counts file descriptors.
	c := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("/metrics: %q: %v", l, err)
			}
			return int64(f)
		}
	}
	return -1
}

// A flow whose upstream keeps answering is not idle: caddy-l4 counts only
// the client's datagrams, netns_proxy counts the upstream's too. One
// question, answered by a stream longer than idle_timeout: every answer
// reaches the client. Once both sides are quiet the flow still ends.
func TestUDPFlowKeptAliveByUpstream(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	a, be := nss[0], nss[1]
	const idle = time.Second
	startSlowBackend(t, be, "127.0.0.1:9000", time.Second)
	admin.MustLoad(t, layer4JSON(admin, map[string]string{
		"udp": fmt.Sprintf(`{"listen":["netns/%s/udp/127.0.0.1:8000"],"idle_timeout":%q,`+
			`"routes":[{"handle":[{"handler":"netns_proxy","upstreams":[{"dial":"netns/%s/udp/127.0.0.1:9000"}]}]}]}`,
			a, idle, be),
	}), "json")
	var misdirected atomic.Int64
	c := flowClient(t, a, "stream "+a, &misdirected)
	defer c.close()
	held0 := metric(t, admin, "caddy_netns_udp_quarantine_sockets")
	if _, err := fmt.Fprintf(c.c, "%s\n", c.prefix); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Second); c.got.Load() < streamLen && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	streamed := time.Now()
	if n := c.got.Load(); n != streamLen {
		t.Errorf("one question answered by %d datagrams over %v (idle_timeout %v): the client got %d",
			streamLen, streamLen*streamGap, idle, n)
	}
	// Both sides quiet: the flow ends and its socket goes to quarantine.
	for time.Since(streamed) < 30*time.Second && metric(t, admin, "caddy_netns_udp_quarantine_sockets") <= held0 {
		time.Sleep(100 * time.Millisecond)
	}
	if metric(t, admin, "caddy_netns_udp_quarantine_sockets") <= held0 {
		t.Errorf("the flow did not end within 30s of both sides going quiet")
	}
}

// A "stream" question is answered streamLen times, streamGap apart.
const (
	streamLen = 8
	streamGap = 300 * time.Millisecond
)

// slowBackend answers "slow ..." datagrams after a delay, "stream ..."
// ones streamLen times, and any other at once, each with "b: <datagram>",
// to the address it came from.
type slowBackend struct {
	asked atomic.Int64 // slow questions received
	late  atomic.Int64 // delayed answers sent
	wg    sync.WaitGroup
}

func startSlowBackend(t *testing.T, ns, addr string, delay time.Duration) *slowBackend {
	t.Helper()
	n, err := nsenter.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	pc, err := nsenter.ListenPacket(n, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := new(slowBackend)
	t.Cleanup(func() { pc.Close(); s.wg.Wait() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := []byte("b: " + strings.TrimSpace(string(buf[:n])) + "\n")
			if strings.HasPrefix(string(buf[:n]), "stream ") {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					for range streamLen {
						if _, err := pc.WriteTo(msg, from); err != nil {
							return
						}
						time.Sleep(streamGap)
					}
				}()
				continue
			}
			if !strings.HasPrefix(string(buf[:n]), "slow ") {
				pc.WriteTo(msg, from)
				continue
			}
			s.asked.Add(1)
			s.wg.Add(1)
			time.AfterFunc(delay, func() {
				defer s.wg.Done()
				if _, err := pc.WriteTo(msg, from); err == nil {
					s.late.Add(1)
				}
			})
		}
	}()
	return s
}

// udpFlow is a client socket in a namespace: one flow through the proxy.
// Everything it receives must answer its own prefix.
type udpFlow struct {
	c      net.Conn
	prefix string
	got    atomic.Int64
	done   chan struct{}
}

func flowClient(t *testing.T, ns, prefix string, misdirected *atomic.Int64) *udpFlow {
	t.Helper()
	c, err := dialIn(ns, "udp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	f := &udpFlow{c: c, prefix: prefix, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // an ICMP error for an earlier datagram
			}
			if err != nil {
				return
			}
			got := strings.TrimSpace(string(buf[:n]))
			if strings.HasPrefix(got, "b: "+prefix) {
				f.got.Add(1)
				continue
			}
			misdirected.Add(1)
			t.Errorf("the flow %q in %s received %q", prefix, ns, got)
		}
	}()
	return f
}

func (f *udpFlow) close() {
	f.c.Close()
	<-f.done
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A negative udp_quarantine_max is refused with an error naming it.
func TestUDPQuarantineMaxRefused(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	err := admin.Load(layer4JSON(admin, map[string]string{
		"udp": proxyServer([]string{"udp/127.0.0.1:0"},
			`{"handler":"netns_proxy","udp_quarantine_max":-1,"upstreams":[{"dial":"udp/127.0.0.1:9"}]}`),
	}), "json")
	if err == nil || !strings.Contains(err.Error(), "udp_quarantine_max -1") {
		t.Errorf("load with udp_quarantine_max -1: %v, want an error naming it", err)
	}
}
