//go:build linux

package nsenter_test

import (
	"net"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// OpenTCPConns counts the connections to a listener's port inside its
// namespace, accepted or still queued, and stops counting closed ones.
func TestOpenTCPConns(t *testing.T) {
	nstest.Require(t)
	ns := nstest.Add(t, 1)[0]
	n, err := nsenter.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ln, err := nsenter.Listen(n, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	count := func() int {
		t.Helper()
		got, err := nsenter.OpenTCPConns(ln.(*net.TCPListener), port)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := count(); got != 0 {
		t.Fatalf("no connections: counted %d", got)
	}
	var conns []net.Conn
	for range 3 {
		c, err := nsenter.Dial(t.Context(), n, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if got := count(); got != 3 {
		t.Errorf("3 connections (queued): counted %d", got)
	}
	// The same port in the process's own namespace does not count.
	if own, err := net.Listen("tcp", ln.Addr().String()); err == nil {
		defer own.Close()
		if c, err := net.Dial("tcp", own.Addr().String()); err == nil {
			defer c.Close()
		}
	}
	if got := count(); got != 3 {
		t.Errorf("with traffic on the same port outside: counted %d", got)
	}
	for _, c := range conns {
		c.Close()
	}
}
