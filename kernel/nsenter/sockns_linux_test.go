package nsenter_test

import (
	"net"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// SocketID names the namespace an accepted connection arrived in, asked of
// the accepted socket itself.
func TestSocketIDOfAcceptedConnection(t *testing.T) {
	nstest.Require(t)
	name := nstest.Add(t, 1)[0]
	ns := open(t, name)
	ln, err := nsenter.Listen(ns, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := nsenter.Dial(t.Context(), ns, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got, err := nsenter.SocketID(a.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	if got != ns.ID {
		t.Fatalf("accepted socket in %v, want %v", got, ns.ID)
	}
	own, err := nsenter.Current()
	if err != nil {
		t.Fatal(err)
	}
	if got == own {
		t.Fatal("namespace is the process's own")
	}
}
