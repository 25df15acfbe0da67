package nstest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// Backend answers each line it receives with "<tag>: <line>", over a TCP
// listener and a UDP socket the caller opened (in whatever namespace).
// Stop closes both and every open connection; it also runs when the test
// ends.
type Backend struct {
	Tag  string
	ln   net.Listener
	pc   net.PacketConn
	mu   sync.Mutex
	open map[net.Conn]bool
}

// Serve starts a Backend on ln and pc.
func Serve(t testing.TB, tag string, ln net.Listener, pc net.PacketConn) *Backend {
	b := &Backend{Tag: tag, ln: ln, pc: pc, open: map[net.Conn]bool{}}
	t.Cleanup(b.Stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.open[c] = true
			b.mu.Unlock()
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s: %s\n", tag, sc.Text())
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(tag+": "+strings.TrimSpace(string(buf[:n]))+"\n"), from)
		}
	}()
	return b
}

// Stop closes the sockets and every open connection.
func (b *Backend) Stop() {
	b.ln.Close()
	b.pc.Close()
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
}

// Dial connects from inside the named namespace ("" for the process's
// own) to addr, within 5 seconds.
func Dial(ns, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := open(ns)
	if err != nil {
		return nil, err
	}
	if n != nil {
		defer n.Close()
	}
	return nsenter.Dial(ctx, n, network, addr)
}

// AskOn sends one line on c and returns the answer line (a Backend's
// "<tag>: <line>"), trimmed.
func AskOn(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	if _, ok := c.(*net.UDPConn); ok {
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		return strings.TrimSpace(string(buf[:n])), err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}

// StartBackend runs a Serve backend on addr, TCP and UDP, inside namespace
// ns ("" is the process's own). Stop closes its sockets and connections,
// which would otherwise keep the namespace alive.
func StartBackend(t testing.TB, ns, addr, tag string) *Backend {
	t.Helper()
	n, err := open(ns)
	if err != nil {
		t.Fatal(err)
	}
	if n != nil {
		defer n.Close()
	}
	ln, err := nsenter.Listen(n, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := nsenter.ListenPacket(n, "udp", addr)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return Serve(t, tag, ln, pc)
}

// TCPPair returns the two ends of a loopback TCP connection (client,
// server), closed when the test ends.
func TCPPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// Ask sends one line from inside namespace ns ("" is the process's own) to
// addr and returns the answer line.
func Ask(ns, network, addr, line string) (string, error) {
	c, err := Dial(ns, network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return AskOn(c, line)
}

// ExpectAnswer checks that a client in ns ("" is the process's own) gets
// the answer of the Backend tagged tag to a line sent over network to addr.
func ExpectAnswer(t testing.TB, ns, network, addr, tag string) {
	t.Helper()
	line := strings.TrimSpace("ping " + ns)
	got, err := Ask(ns, network, addr, line)
	if want := tag + ": " + line; err != nil || got != want {
		t.Errorf("client in %q, %s %s: got %q, %v; want %q", ns, network, addr, got, err, want)
	}
}
