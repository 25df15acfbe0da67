package nsnetwork

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// releasing is an inner network's handle: closing it returns its reference.
type releasing struct {
	net.Listener
	once    sync.Once
	release func()
}

func (r *releasing) Close() error {
	err := r.Listener.Close()
	r.once.Do(r.release)
	return err
}

// An app's own listener type for an inner network.
type acceptConner struct{ net.Listener }

func (a acceptConner) AcceptConn(context.Context) (net.Conn, error) { return a.Accept() }

// An inner network forms sets: the members are its own sockets, the set
// accepts from all of them, and a registered wrapper gives the app its
// own listener type.
func TestSetOfInnerNetwork(t *testing.T) {
	nstest.Require(t)
	RegisterInnerNetwork("zzstream", InnerNetwork{
		Socket: func(ns *nsenter.Namespace, _, address string) (*os.File, error) {
			return nsenter.ListenFile(ns, "tcp", address)
		},
		Wrap: func(f *os.File, release func()) (any, error) {
			ln, err := net.FileListener(f)
			if err != nil {
				return nil, err
			}
			return &releasing{Listener: ln, release: release}, nil
		},
	})
	RegisterSetListener("zzstream", func(ln net.Listener) any { return acceptConner{ln} })

	prefix := nstest.Name("nlsi") + "-"
	names := []string{prefix + "a", prefix + "b"}
	var batch strings.Builder
	for _, n := range names {
		batch.WriteString("netns add " + n + "\n")
	}
	t.Cleanup(func() { nstest.Del(names...) })
	nstest.Batch(t, batch.String())
	for _, n := range names {
		if err := nstest.LoopbackUp(n); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	h, err := ListenNetwork(ctx, Network, prefix+"*/zzstream/127.0.0.1", "8000", 0, net.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ln, ok := h.(acceptConner)
	if !ok {
		t.Fatalf("got a %T, want the registered wrapper", h)
	}
	for _, n := range names {
		ns, err := nsenter.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := nsenter.Dial(dctx, ns, "tcp", "127.0.0.1:8000")
		dcancel()
		ns.Close()
		if err != nil {
			t.Fatalf("dial in %s: %v", n, err)
		}
		defer c.Close()
		got, err := ln.AcceptConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := nsenter.SocketID(got.(*net.TCPConn)); err != nil || id != nstest.ID(t, n) {
			t.Errorf("connection from %s accepted in %v, %v", n, id, err)
		}
		got.Close()
	}
	cancel() // the config ends: the handle and, with it, the set close
	deadline := time.Now().Add(5 * time.Second)
	for len(Sockets()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, s := range Sockets() {
		if strings.HasPrefix(s.Namespace, prefix) {
			t.Errorf("socket left open: %+v", s)
		}
	}
}
