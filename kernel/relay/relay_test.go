package relay_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/relay"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) { return nstest.TCPPair(t) }

// Bytes flow both ways and the first half-close reaches the other side: the
// client closes its writing side first and still reads the whole answer.
func TestPipeTCPHalfClose(t *testing.T) {
	client, down := tcpPair(t)
	up, server := tcpPair(t)
	res := make(chan relay.Result, 1)
	go func() { res <- relay.Pipe(down, up) }()

	req := bytes.Repeat([]byte("q"), 1<<20)
	go func() {
		client.Write(req)
		client.CloseWrite()
	}()
	got, err := io.ReadAll(server) // ends at the client's half-close
	if err != nil || !bytes.Equal(got, req) {
		t.Fatalf("server read %d bytes, %v; want %d", len(got), err, len(req))
	}
	answer := bytes.Repeat([]byte("a"), 3<<20)
	read := make(chan []byte, 1)
	go func() {
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(client)
		if err != nil {
			t.Errorf("client: %v", err)
		}
		read <- got
	}()
	server.Write(answer)
	server.CloseWrite()
	// Both directions have ended when Pipe returns; the caller's Close
	// sends the client its FIN.
	r := <-res
	down.Close()
	up.Close()
	if got := <-read; !bytes.Equal(got, answer) {
		t.Fatalf("client read %d bytes; want %d", len(got), len(answer))
	}
	if r.Err != nil || r.Up != int64(len(req)) || r.Down != int64(len(answer)) {
		t.Fatalf("result %+v", r)
	}
}

// A reset on one side ends both directions with the error.
func TestPipeErrorEndsBoth(t *testing.T) {
	client, down := tcpPair(t)
	up, server := tcpPair(t)
	res := make(chan relay.Result, 1)
	go func() { res <- relay.Pipe(down, up) }()
	client.SetLinger(0)
	client.Close() // RST
	select {
	case r := <-res:
		if r.Err == nil {
			t.Errorf("no error after a reset")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe did not return after a reset")
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Error("upstream still open")
	}
}

// UDP upstreams cannot half-close: when down ends, up is closed and Pipe
// returns without an error.
func TestPipeUDPUpstream(t *testing.T) {
	client, down := tcpPair(t)
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	up, err := net.Dial("udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan relay.Result, 1)
	go func() { res <- relay.Pipe(down, up) }()
	client.Write([]byte("hello"))
	buf := make([]byte, 100)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("upstream got %q, %v", buf[:n], err)
	}
	srv.WriteTo([]byte("world"), from)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err = client.Read(buf)
	if err != nil || string(buf[:n]) != "world" {
		t.Fatalf("client got %q, %v", buf[:n], err)
	}
	client.CloseWrite()
	select {
	case r := <-res:
		if r.Err != nil {
			t.Errorf("error %v", r.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe did not return")
	}
}

// Small chunks are copied, and once a read fills BulkThreshold the rest is
// spliced: the bytes arrive whole and in order across the switch.
func TestPipeSmallThenBulk(t *testing.T) {
	client, down := tcpPair(t)
	up, server := tcpPair(t)
	res := make(chan relay.Result, 1)
	go func() { res <- relay.Pipe(down, up) }()

	var want bytes.Buffer
	go func() {
		for i := range 20 {
			chunk := bytes.Repeat([]byte{byte('a' + i)}, 64)
			client.Write(chunk)
			time.Sleep(time.Millisecond) // one read each
		}
		client.Write(bytes.Repeat([]byte("B"), 3*relay.BulkThreshold))
		client.Write([]byte("tail"))
		client.CloseWrite()
	}()
	for i := range 20 {
		want.Write(bytes.Repeat([]byte{byte('a' + i)}, 64))
	}
	want.Write(bytes.Repeat([]byte("B"), 3*relay.BulkThreshold))
	want.WriteString("tail")

	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(server)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("server read %d bytes, %v; want %d in order", len(got), err, want.Len())
	}
	server.CloseWrite()
	if r := <-res; r.Err != nil || r.Up != int64(want.Len()) {
		t.Fatalf("result %+v", r)
	}
}
