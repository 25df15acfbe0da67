package nstest

import (
	"net"
	"testing"
	"time"
)

// FreePort returns a TCP port free on 127.0.0.1 in the test's own
// namespace.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitListening waits, at most 20 seconds, until something accepts TCP
// connections on addr inside namespace ns ("" is the test's own).
func WaitListening(t testing.TB, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := Dial(ns, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s in %q: %v", addr, ns, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
