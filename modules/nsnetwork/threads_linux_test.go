package nsnetwork_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// A connection accepted or a datagram read through a namespace listener
// counts as traffic: the idle threads a burst left behind are ended once
// the traffic has been quiet for nsenter.ShedDelay.
func TestTrafficThroughHandlesShedsIdleThreads(t *testing.T) {
	nstest.Require(t)
	ns := nstest.Add(t, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(network string) any {
		a, err := nsnetwork.ParseAddress("netns/" + ns + "/" + network + "/127.0.0.1:8000")
		if err != nil {
			t.Fatal(err)
		}
		h, err := nsnetwork.Listen(ctx, a, 0)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ln, pc := open("tcp").(net.Listener), open("udp").(net.PacketConn)
	keep := nsenter.ShedKeep()
	// Each case connects its client first (a namespace switch, which
	// starts shedding by itself), then waits for quiet, makes the burst,
	// and only then lets the handle see the traffic.
	for name, prepare := range map[string]func() (traffic func()){
		"accept": func() func() {
			c, err := nstest.Dial(ns, "tcp", "127.0.0.1:8000")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return func() {
				s, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			}
		},
		"datagram": func() func() {
			c, err := nstest.Dial(ns, "udp", "127.0.0.1:8000")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return func() {
				if _, err := c.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				if _, _, err := pc.ReadFrom(make([]byte, 16)); err != nil {
					t.Fatal(err)
				}
			}
		},
	} {
		traffic := prepare()
		time.Sleep(3 * nsenter.ShedDelay)
		burst := nstest.ThreadBurst(keep + 40)
		if now := nstest.WaitThreads(keep+2, 3*nsenter.ShedDelay); now <= keep+2 {
			t.Fatalf("%s: threads fell from %d to %d before any traffic", name, burst, now)
		}
		traffic()
		within := nsenter.ShedDelay + 5*time.Second
		if now := nstest.WaitThreads(keep+2, within); now > keep+2 {
			t.Errorf("%s: threads %d after the burst, still %d %v after the traffic; want at most %d", name, burst, now, within, keep+2)
		}
	}
}
