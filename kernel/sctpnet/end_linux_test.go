//go:build linux && !386

package sctpnet

import (
	"errors"
	"io"
	"testing"
	"time"
)

func readErr(c *Conn) chan error {
	ch := make(chan error, 1)
	go func() {
		buf := make([]byte, 1000)
		for {
			if _, _, _, err := c.ReadMsg(buf); err != nil {
				ch <- err
				return
			}
		}
	}()
	return ch
}

func wait(t *testing.T, ch chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no error after 20 s", what)
		return nil
	}
}

// TestShutdown: data sent before Shutdown arrives, then both sides read
// io.EOF (the initiator through SHUTDOWN_COMP, the peer through read 0).
func TestShutdown(t *testing.T) {
	ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
	client, server := pair(t, Config{}, ln, "sctp4", "")
	client.WriteMsg([]byte("last words"), Info{Stream: 2})
	if err := client.Shutdown(); err != nil {
		t.Fatal(err)
	}
	msg, info, err := server.ReadMessage(nil)
	if err != nil || string(msg) != "last words" || info.Stream != 2 {
		t.Fatalf("data before the shutdown: %q %+v %v", msg, info, err)
	}
	if err := wait(t, readErr(server), "peer of the shutdown"); err != io.EOF {
		t.Errorf("peer read: %v, want io.EOF", err)
	}
	if err := wait(t, readErr(client), "shutdown initiator"); err != io.EOF {
		t.Errorf("initiator read: %v, want io.EOF", err)
	}
	if _, _, _, err := server.ReadMsg(make([]byte, 10)); err != io.EOF {
		t.Errorf("second read after EOF: %v", err)
	}
}

// TestCloseGraceful: Close with nothing unread is a graceful shutdown.
func TestCloseGraceful(t *testing.T) {
	ln := listen(t, Config{}, nil, "sctp6", "[::1]:0")
	client, server := pair(t, Config{}, ln, "sctp6", "")
	ch := readErr(server)
	client.Close()
	if err := wait(t, ch, "peer of Close"); err != io.EOF {
		t.Errorf("peer read: %v, want io.EOF", err)
	}
}

// TestAbort: Abort, and Close with unread data, both end in an ABORT that
// the peer's reads report as ErrAborted, not io.EOF.
func TestAbort(t *testing.T) {
	t.Run("Abort", func(t *testing.T) {
		ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
		client, server := pair(t, Config{}, ln, "sctp4", "")
		ch := readErr(server)
		if err := client.Abort(); err != nil {
			t.Fatal(err)
		}
		err := wait(t, ch, "peer of Abort")
		if !errors.Is(err, ErrAborted) {
			t.Fatalf("peer read: %v, want ErrAborted", err)
		}
		t.Logf("peer read: %v", err)
		if _, _, _, again := server.ReadMsg(make([]byte, 10)); !errors.Is(again, ErrAborted) {
			t.Errorf("second read: %v", again)
		}
		if _, err := server.WriteMsg([]byte("x"), Info{}); err == nil {
			t.Error("write after abort: no error")
		}
	})
	t.Run("close with unread data", func(t *testing.T) {
		ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
		client, server := pair(t, Config{}, ln, "sctp4", "")
		client.WriteMsg([]byte("never read"), Info{})
		time.Sleep(100 * time.Millisecond) // let it reach the server's queue
		ch := readErr(client)
		server.Close()
		if err := wait(t, ch, "peer of Close with unread data"); !errors.Is(err, ErrAborted) {
			t.Fatalf("peer read: %v, want ErrAborted", err)
		}
	})
}
