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
	var n *nsenter.Namespace
	if ns != "" {
		var err error
		if n, err = nsenter.Open(ns); err != nil {
			return nil, err
		}
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
