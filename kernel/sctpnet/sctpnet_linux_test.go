//go:build linux && !386

package sctpnet

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ishidawataru/sctp"
	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
)

func TestListenDial(t *testing.T) {
	sctptest.RequireSCTP(t)
	for _, c := range []struct {
		name, network, listen, dialNetwork, dialHost string
	}{
		{"v4", "sctp4", "127.0.0.1:0", "sctp4", ""},
		{"v6", "sctp6", "[::1]:0", "sctp6", ""},
		{"wildcard v4 client", "sctp", ":0", "sctp", "127.0.0.1"},
		{"wildcard v6 client", "sctp", ":0", "sctp", "::1"},
		{"v4 wildcard", "sctp4", ":0", "sctp4", "127.0.0.1"},
		{"multi-homed", "sctp4", "127.0.0.1/127.0.0.2:0", "sctp4", "127.0.0.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln := listen(t, Config{}, nil, c.network, c.listen)
			port := ln.Addr().(*sctp.SCTPAddr).Port
			if port == 0 {
				t.Fatalf("listener address %v has no port", ln.Addr())
			}
			client, server := pair(t, Config{}, ln, c.dialNetwork, c.dialHost)
			if got := client.RemoteAddr().(*sctp.SCTPAddr).Port; got != port {
				t.Errorf("client RemoteAddr %v, want port %d", client.RemoteAddr(), port)
			}
			if got := server.LocalAddr().(*sctp.SCTPAddr).Port; got != port {
				t.Errorf("server LocalAddr %v, want port %d", server.LocalAddr(), port)
			}
			if client.LocalAddr().(*sctp.SCTPAddr).Port != server.RemoteAddr().(*sctp.SCTPAddr).Port {
				t.Errorf("client LocalAddr %v, server RemoteAddr %v", client.LocalAddr(), server.RemoteAddr())
			}
			in, out, err := client.Streams()
			if err != nil || out != DefaultOutStreams || in != DefaultOutStreams {
				t.Errorf("client streams in %d out %d, %v; want %d both ways", in, out, err, DefaultOutStreams)
			}
			for _, dir := range []struct{ from, to *Conn }{{client, server}, {server, client}} {
				if _, err := dir.from.Write([]byte("hello " + c.name)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 100)
				n, err := dir.to.Read(buf)
				if err != nil || string(buf[:n]) != "hello "+c.name {
					t.Fatalf("read %q, %v", buf[:n], err)
				}
			}
			t.Logf("%v -> %v", client.LocalAddr(), client.RemoteAddr())
		})
	}
}

func TestStreamsConfig(t *testing.T) {
	ln := listen(t, Config{OutStreams: 5}, nil, "sctp4", "127.0.0.1:0")
	client, server := pair(t, Config{OutStreams: 300, MaxInStreams: 7}, ln, "sctp4", "")
	in, out, err := client.Streams()
	if err != nil || in != 5 || out != 300 {
		t.Errorf("client: in %d out %d, %v; want 5, 300", in, out, err)
	}
	in, out, err = server.Streams()
	if err != nil || in != 300 || out != 5 {
		t.Errorf("server: in %d out %d, %v; want 300, 5", in, out, err)
	}
	// Stream 299 exists from client to server, not the other way.
	if _, err := client.WriteMsg([]byte("x"), Info{Stream: 299}); err != nil {
		t.Errorf("client on stream 299: %v", err)
	}
	if _, err := server.WriteMsg([]byte("x"), Info{Stream: 5}); err == nil {
		t.Error("server on stream 5 of 5: no error")
	}
	buf := make([]byte, 10)
	if _, info, _, err := server.ReadMsg(buf); err != nil || info.Stream != 299 {
		t.Errorf("read stream %d, %v", info.Stream, err)
	}
	if _, err := client.WriteMsg(nil, Info{}); err == nil {
		t.Error("empty message: no error")
	}
}

func TestDialRefused(t *testing.T) {
	sctptest.RequireSCTP(t)
	for _, c := range []struct{ network, addr string }{{"sctp4", "127.0.0.1:0"}, {"sctp6", "[::1]:0"}} {
		ln := listen(t, Config{}, nil, c.network, c.addr)
		addr := dialAddr(ln, "")
		ln.Close()
		conn, err := Dial(testContext(t, 30*time.Second), nil, c.network, addr)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s with nothing listening: no error", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s: %v, want connection refused", addr, err)
		}
	}
}

func TestDialCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, nil, "sctp4", "127.0.0.1:9"); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
	client, server := pair(t, Config{}, ln, "sctp4", "")
	buf := make([]byte, 10)

	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, _, err := server.ReadMsg(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	server.SetReadDeadline(time.Time{})
	client.Write([]byte("after"))
	if n, err := server.Read(buf); err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read after clearing the deadline: %q, %v", buf[:n], err)
	}

	// Accept: deadline, context, Close.
	ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("accept past the deadline: %v", err)
	}
	ln.SetDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ln.AcceptConn(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("accept with a context timeout: %v", err)
	}
	errc := make(chan error, 2)
	go func() { _, err := ln.Accept(); errc <- err }()
	go func() { _, _, _, err := server.ReadMsg(buf); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	ln.Close()
	server.Close()
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("accept/read after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not unblock Accept/Read")
		}
	}
}

// TestReadPieces reads a 200 KiB message with a small buffer: several
// pieces, MsgEOR on the last only, the same Info on each.
func TestReadPieces(t *testing.T) {
	ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
	client, server := pair(t, Config{}, ln, "sctp4", "")
	const size = 200 << 10
	msg := payload(1, size)
	info := Info{Stream: 3, PPID: RawPPID(77)}
	go client.WriteMsg(msg, info)
	var got []byte
	buf := make([]byte, 10000)
	for pieces := 1; ; pieces++ {
		n, in, flags, err := server.ReadMsg(buf)
		if err != nil {
			t.Fatal(err)
		}
		if in.Stream != 3 || in.PPIDNumber() != 77 {
			t.Fatalf("piece %d: info %+v", pieces, in)
		}
		got = append(got, buf[:n]...)
		if flags&MsgEOR != 0 {
			if len(got) != size {
				t.Fatalf("MsgEOR after %d bytes, want %d", len(got), size)
			}
			t.Logf("%d bytes in %d pieces", size, pieces)
			break
		}
		if len(got) >= size {
			t.Fatalf("%d bytes without MsgEOR", len(got))
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("reassembled message differs")
	}
}

func TestMessageTooLarge(t *testing.T) {
	ln := listen(t, Config{MaxMessageSize: 100 << 10}, nil, "sctp4", "127.0.0.1:0")
	// A 300 KiB message needs a send buffer above the default 208 KiB.
	client, server := pair(t, Config{WriteBuffer: 1 << 20}, ln, "sctp4", "")
	errc := make(chan error, 1)
	go func() {
		_, err := client.WriteMsg(payload(1, 300<<10), Info{})
		if err == nil {
			_, err = client.WriteMsg([]byte("next"), Info{PPID: 1}) // same stream: after it
		}
		errc <- err
	}()
	_, _, err := server.ReadMessage(nil)
	if werr := <-errc; werr != nil {
		t.Fatal(werr)
	}
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("300 KiB message with a 100 KiB limit: %v", err)
	}
	msg, info, err := server.ReadMessage(nil)
	if err != nil || string(msg) != "next" || info.PPID != 1 {
		t.Fatalf("message after the dropped one: %q %+v %v", msg, info, err)
	}
}

// TestSendBufferLimit: Linux refuses a message larger than the send
// buffer at once (EMSGSIZE) instead of blocking.
func TestSendBufferLimit(t *testing.T) {
	ln := listen(t, Config{}, nil, "sctp4", "127.0.0.1:0")
	client, _ := pair(t, Config{}, ln, "sctp4", "")
	var sndbuf int
	rc, _ := client.SyscallConn()
	rc.Control(func(fd uintptr) { sndbuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF) })
	client.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := client.WriteMsg(payload(1, sndbuf+1), Info{})
	if !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("message of SO_SNDBUF+1 = %d bytes: %v, want EMSGSIZE", sndbuf+1, err)
	}
}

func TestNetworkErrors(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "x:y", "[::1]:0"} {
		if ln, err := Listen(context.Background(), nil, "sctp4", addr); err == nil {
			ln.Close()
			t.Errorf("listen sctp4 %q: no error", addr)
		}
	}
	if _, err := Dial(context.Background(), nil, "sctp", ":"+strconv.Itoa(9)); err == nil {
		t.Error("dial without a host: no error")
	}
	if _, err := Listen(context.Background(), nil, "udp", ":0"); err == nil {
		t.Error("listen udp: no error")
	}
}

// TestReadMessagePieces reads a 1 MiB message as pooled pieces and sends
// it back with WriteMsgBuffers; a message above MaxMessageSize ends the
// reads with ErrMessageTooLarge, then and on every later read.
func TestReadMessagePieces(t *testing.T) {
	ln := listen(t, Config{MaxMessageSize: 2 << 20}, nil, "sctp4", "127.0.0.1:0")
	client, server := pair(t, Config{MaxMessageSize: 2 << 20}, ln, "sctp4", "")
	want := payload(3, 1<<20)
	go client.WriteMsg(want, Info{Stream: 4, PPID: RawPPID(60)})
	p, info, err := server.ReadMessagePieces(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(p, nil); !bytes.Equal(got, want) || info.Stream != 4 || info.PPIDNumber() != 60 {
		t.Fatalf("%d bytes in %d pieces, info %+v; want %d bytes", len(got), len(p), info, len(want))
	}
	for _, b := range p {
		if len(b) > PieceSize {
			t.Fatalf("piece of %d bytes", len(b))
		}
	}
	if _, err := server.WriteMsgBuffers(p, info); err != nil {
		t.Fatal(err)
	}
	ReleasePieces(p)
	back, _, err := client.ReadMessage(nil)
	if err != nil || !bytes.Equal(back, want) {
		t.Fatalf("echo of %d bytes: %v", len(back), err)
	}

	if err := server.SetMaxMessageSize(100000); err != nil {
		t.Fatal(err)
	}
	go client.WriteMsg(payload(4, 100001), Info{})
	if _, _, err := server.ReadMessagePieces(nil); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("100001 bytes with a limit of 100000: %v", err)
	}
	if _, _, err := server.ReadMessagePieces(nil); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("read after a message too large: %v", err)
	}
}
