package nstest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
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
