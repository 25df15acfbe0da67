//go:build linux && !386

package sctpnet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ishidawataru/sctp"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func listen(t *testing.T, cfg Config, socket SocketFunc, network, address string) *Listener {
	t.Helper()
	sctptest.RequireSCTP(t)
	ln, err := cfg.Listen(context.Background(), socket, network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialAddr is the address to dial a listener on: host (or the listener's
// first address) with the listener's port.
func dialAddr(ln *Listener, host string) string {
	a := ln.Addr().(*sctp.SCTPAddr)
	if host == "" {
		host = a.IPAddrs[0].IP.String()
	}
	return fmt.Sprintf("[%s]:%d", host, a.Port)
}

// pair dials ln and returns both ends of one association.
func pair(t *testing.T, cfg Config, ln *Listener, network, host string) (client, server *Conn) {
	t.Helper()
	sctptest.RequireSCTP(t)
	ctx := testContext(t, 30*time.Second)
	type accepted struct {
		c   *Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.AcceptConn(ctx)
		ch <- accepted{c, err}
	}()
	client, err := cfg.Dial(ctx, nil, network, dialAddr(ln, host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	return client, a.c
}

// payload is message i's content: size bytes that depend on i.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j*7 + j>>8)
	}
	return b
}
