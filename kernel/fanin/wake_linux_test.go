//go:build linux

package fanin

import (
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWake checks that Close and a deadline wake a parked Accept and
// ReadFrom, and that a deadline can be lifted again.
func TestWake(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	type waiter interface {
		wait() error
		deadline(time.Time) error
		close() error
	}
	mk := map[string]func() waiter{
		"listener": func() waiter {
			l, err := NewListener(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.AddFD("a", openSockets(t, inNS, unix.SOCK_STREAM, 21000, 1)[0]); err != nil {
				t.Fatal(err)
			}
			return lw{l}
		},
		"packetconn": func() waiter {
			c, err := NewPacketConn(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.AddFD("a", openSockets(t, inNS, unix.SOCK_DGRAM, 21000, 1)[0]); err != nil {
				t.Fatal(err)
			}
			return pw{c}
		},
	}
	for name, newW := range mk {
		t.Run(name, func(t *testing.T) {
			w := newW()
			result := func() error {
				errc := make(chan error, 1)
				go func() { errc <- w.wait() }()
				select {
				case err := <-errc:
					return err
				case <-time.After(30 * time.Second):
					t.Fatal("still parked after 30 s")
					return nil
				}
			}
			// A deadline set while parked wakes it.
			errc := make(chan error, 1)
			go func() { errc <- w.wait() }()
			time.Sleep(50 * time.Millisecond)
			w.deadline(time.Now().Add(20 * time.Millisecond))
			select {
			case err := <-errc:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("after the deadline: %v, want os.ErrDeadlineExceeded", err)
				}
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("%v is not a net.Error timeout", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("deadline did not wake the waiter")
			}
			// A past deadline fails at once; the zero time lifts it.
			if err := result(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("with a past deadline: %v", err)
			}
			w.deadline(time.Time{})
			go func() { errc <- w.wait() }()
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-errc:
				t.Fatalf("returned %v with no deadline and no traffic", err)
			default:
			}
			// Close wakes it.
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Close did not wake the waiter")
			}
			if err := result(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("after Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

type lw struct{ *Listener }

func (w lw) wait() error {
	c, err := w.Accept()
	if c != nil {
		c.Close()
	}
	return err
}

func (w lw) deadline(t time.Time) error { return w.SetDeadline(t) }

func (w lw) close() error { return w.Close() }

type pw struct{ *PacketConn }

func (w pw) wait() error {
	_, _, err := w.ReadFrom(make([]byte, 64))
	return err
}

func (w pw) deadline(t time.Time) error { return w.SetReadDeadline(t) }

func (w pw) close() error { return w.Close() }

// TestWakeShared has two callers wait on one Listener and one PacketConn
// (as the old and the new config do during a reload), calls Wake, and
// checks that both return ErrWoken, the one parked on the netpoller and
// the one queued behind it, and that the next call serves traffic.
func TestWakeShared(t *testing.T) {
	needRoot(t)
	inNS := privateNetns(t)
	l, err := NewListener(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddFD("t", openSockets(t, inNS, unix.SOCK_STREAM, 34000, 1)[0])
	pc, err := NewPacketConn(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.AddFD("u", openSockets(t, inNS, unix.SOCK_DGRAM, 34000, 1)[0])
	g0 := runtime.NumGoroutine()

	for _, w := range []waiter2{{"listener", lw{l}, l.Wake}, {"packetconn", pw{pc}, pc.Wake}} {
		errc := make(chan error, 2)
		for range 2 {
			go func() { errc <- w.w.wait() }()
		}
		time.Sleep(100 * time.Millisecond)
		w.wake()
		for range 2 {
			select {
			case err := <-errc:
				if !errors.Is(err, ErrWoken) {
					t.Errorf("%s: after Wake: %v, want ErrWoken", w.name, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: a waiter was not woken", w.name)
			}
		}
		// A call begun after Wake waits for traffic.
		go func() { errc <- w.w.wait() }()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-errc:
			t.Fatalf("%s: a call begun after Wake returned %v", w.name, err)
		default:
		}
		if err := inNS(func() error {
			typ := unix.SOCK_STREAM
			if w.name == "packetconn" {
				typ = unix.SOCK_DGRAM
			}
			fd, err := dialFD(typ, 34000)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			_, err = unix.Write(fd, []byte("x"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s: after Wake, serving: %v", w.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not served after Wake", w.name)
		}
	}
	if g := settle(g0); g > g0 {
		t.Errorf("goroutines: %d after, %d before", g, g0)
	}
}

type waiter2 struct {
	name string
	w    interface{ wait() error }
	wake func()
}
