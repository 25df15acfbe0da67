package nstest

import (
	"net"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// open opens the named namespace; "" is the process's own (nil).
func open(ns string) (*nsenter.Namespace, error) {
	if ns == "" {
		return nil, nil
	}
	return nsenter.Open(ns)
}

// Listen opens a listener on addr inside namespace ns ("" is the process's
// own), failing the test on error. The caller closes it (AcceptEach does).
func Listen(t testing.TB, ns, network, addr string) net.Listener {
	t.Helper()
	n, err := open(ns)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := nsenter.Listen(n, network, addr)
	if n != nil {
		n.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// AcceptEach accepts connections on ln until it is closed, when the test
// ends, and runs handle on each in its own goroutine, closing the
// connection when handle returns.
func AcceptEach(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

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
