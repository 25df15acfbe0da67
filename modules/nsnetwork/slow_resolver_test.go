package nsnetwork_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// slowDNS is a DNS server on loopback that answers every A query with
// 127.0.0.1 (and AAAA with nothing), but only once release is closed. Its
// first query is reported on asked.
type slowDNS struct {
	pc      net.PacketConn
	asked   chan struct{}
	release chan struct{}
}

func startSlowDNS(t *testing.T) *slowDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowDNS{pc: pc, asked: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { pc.Close() })
	first := true
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) == 0 {
				continue
			}
			if first {
				first = false
				close(s.asked)
			}
			go func() {
				select {
				case <-s.release:
				case <-time.After(30 * time.Second):
				}
				q := m.Questions[0]
				m.Header.Response, m.Header.Authoritative = true, true
				if q.Type == dnsmessage.TypeA {
					m.Answers = []dnsmessage.Resource{{
						Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 60},
						Body:   &dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}},
					}}
				}
				if b, err := m.Pack(); err == nil {
					pc.WriteTo(b, from)
				}
			}()
		}
	}()
	return s
}

// The name of a listen address is resolved while a listener starts. A
// resolver that takes long (here a DNS server on loopback that holds its
// answer; Go's resolver gives up on it after 5s and asks again) must delay
// only that listener: a listener starting meanwhile in another namespace,
// on an IP address, starts at once.
func TestSlowResolverDoesNotStallOtherListeners(t *testing.T) {
	nstest.Require(t)
	nss := nstest.Add(t, 2)
	dns := startSlowDNS(t)
	release := sync.OnceFunc(func() { close(dns.release) })
	defer release()
	saved := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.pc.LocalAddr().String())
	}}
	t.Cleanup(func() { net.DefaultResolver = saved })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // closes the handles

	slow := make(chan error, 2)
	listenSlow := func() {
		_, err := nsnetwork.Listen(ctx, nsnetwork.Address{Namespace: nss[0], Network: "tcp",
			Host: "slow.caddy-netns.invalid", StartPort: 8000, EndPort: 8000}, 0)
		slow <- err
	}
	go listenSlow()
	select {
	case <-dns.asked:
	case err := <-slow:
		t.Fatalf("the listener on a name started without asking the DNS server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the DNS server was never asked")
	}

	// A second listener on the same address waits for the first and
	// shares its socket.
	go listenSlow()
	other := make(chan error, 1)
	go func() {
		_, err := nsnetwork.Listen(ctx, nsnetwork.Address{Namespace: nss[1], Network: "tcp",
			Host: "127.0.0.1", StartPort: 8000, EndPort: 8000}, 0)
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("listener in %s: %v", nss[1], err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("a listener in %s waited 10s for a name being resolved for a listener in %s", nss[1], nss[0])
	}
	release()
	for range 2 {
		select {
		case err := <-slow:
			if err != nil {
				t.Errorf("listener on the name once resolved: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the listener on a name never started")
		}
	}
	id := nstest.ID(t, nss[0])
	found := 0
	for _, s := range nsnetwork.Sockets() {
		if s.NamespaceID == id {
			found++
			if s.Handles != 2 {
				t.Errorf("socket %s %s in %s has %d handles, want 2 (one socket shared)", s.Network, s.Address, nss[0], s.Handles)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d sockets in %s, want 1", found, nss[0])
	}
	expectAnswerDirect(t, nss[0])
	expectAnswerDirect(t, nss[1])
}

// expectAnswerDirect checks that something listens on 127.0.0.1:8000 in ns.
func expectAnswerDirect(t *testing.T, ns string) {
	t.Helper()
	c, err := dialIn(ns, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Errorf("nothing listens in %s: %v", ns, err)
		return
	}
	c.Close()
}
