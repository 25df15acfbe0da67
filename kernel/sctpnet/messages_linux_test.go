//go:build linux && !386

package sctpnet

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// messageSizes run from 1 byte to 200 KiB, around the 64 KiB pieces the
// kernel hands over and a typical path MTU.
var messageSizes = []int{1, 2, 3, 100, 1000, 1452, 1500, 4096, 16384, 65535, 65536, 65537, 100000, 150000, 200 << 10}

// testMessage is message i of a run: its Info says which one it is.
func testMessage(dir, i int) ([]byte, Info) {
	info := Info{
		Stream: uint16(i % 16),
		PPID:   RawPPID(uint32(dir*100000 + i)), // distinct per message and direction
	}
	if i%5 == 4 {
		info.Flags = FlagUnordered
	}
	return payload(dir*100000+i, messageSizes[i%len(messageSizes)]), info
}

// sendAll writes n messages; receiveAll reads n and checks every one
// arrived whole, once, with its stream, PPID and unordered flag, and in
// order within each stream (for ordered messages).
func sendAll(c *Conn, dir, n int) error {
	for i := range n {
		msg, info := testMessage(dir, i)
		if _, err := c.WriteMsg(msg, info); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	return nil
}

func receiveAll(c *Conn, dir, n int) error {
	seen := make(map[int]bool)
	lastOrdered := make(map[uint16]int) // stream -> last ordered message index
	var buf []byte
	for range n {
		msg, info, err := c.ReadMessage(buf)
		if err != nil {
			return fmt.Errorf("after %d messages: %w", len(seen), err)
		}
		buf = msg
		i := int(info.PPIDNumber()) - dir*100000
		if i < 0 || i >= n || seen[i] {
			return fmt.Errorf("unexpected or repeated PPID %d", info.PPIDNumber())
		}
		seen[i] = true
		want, winfo := testMessage(dir, i)
		switch {
		case !bytes.Equal(msg, want):
			return fmt.Errorf("message %d: %d bytes, want %d (split, merged or corrupted)", i, len(msg), len(want))
		case info.Stream != winfo.Stream:
			return fmt.Errorf("message %d: stream %d, want %d", i, info.Stream, winfo.Stream)
		case info.Unordered() != winfo.Unordered():
			return fmt.Errorf("message %d: unordered %v, want %v", i, info.Unordered(), winfo.Unordered())
		}
		if !info.Unordered() {
			if last, ok := lastOrdered[info.Stream]; ok && last > i {
				return fmt.Errorf("message %d on stream %d after %d", i, info.Stream, last)
			}
			lastOrdered[info.Stream] = i
		}
	}
	return nil
}

// TestMessages sends messages of 1 B to 200 KiB on 16 streams with distinct
// PPIDs, some unordered, in both directions at once.
func TestMessages(t *testing.T) {
	for _, c := range []struct{ network, addr string }{{"sctp4", "127.0.0.1:0"}, {"sctp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			ln := listen(t, Config{}, nil, c.network, c.addr)
			client, server := pair(t, Config{}, ln, c.network, "")
			const n = 60
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			run := func(name string, f func() error) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := f(); err != nil {
						errs <- fmt.Errorf("%s: %w", name, err)
					}
				}()
			}
			run("client send", func() error { return sendAll(client, 1, n) })
			run("server send", func() error { return sendAll(server, 2, n) })
			run("server receive", func() error { return receiveAll(server, 1, n) })
			run("client receive", func() error { return receiveAll(client, 2, n) })
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("%d messages each way in %v", n, time.Since(start))
		})
	}
}

// TestRelay forwards messages through a relay the way a proxy would:
// ReadMessage on one association, WriteMsg of the same bytes and Info on
// the next. Stream, raw PPID, unordered flag and boundaries come through.
//
// Unlike TestMessages it raises the receive buffers (ReadBuffer, with
// net.core.rmem_max raised as in the sctpvm guest), which spares the
// 200 ms stalls of messages larger than half the default buffer.
func TestRelay(t *testing.T) {
	big := Config{ReadBuffer: 4 << 20}
	upstreamLn := listen(t, big, nil, "sctp4", "127.0.0.1:0")
	relayLn := listen(t, big, nil, "sctp6", "[::1]:0")
	client, relayIn := pair(t, Config{OutStreams: 16, ReadBuffer: 4 << 20}, relayLn, "sctp6", "")
	in, _, err := relayIn.Streams()
	if err != nil {
		t.Fatal(err)
	}
	// Dial the upstream with as many outbound streams as the client has.
	relayOut, upstream := pair(t, Config{OutStreams: in, ReadBuffer: 4 << 20}, upstreamLn, "sctp4", "")
	relay := func(from, to *Conn) {
		var buf []byte
		for {
			msg, info, err := from.ReadMessage(buf)
			if err != nil {
				to.Shutdown()
				return
			}
			buf = msg
			if _, err := to.WriteMsg(msg, info); err != nil {
				return
			}
		}
	}
	go relay(relayIn, relayOut)
	go relay(relayOut, relayIn)
	const n = 45
	start := time.Now()
	defer func() { t.Logf("%d messages each way through the relay in %v", n, time.Since(start)) }()
	errc := make(chan error, 2)
	go func() { errc <- sendAll(client, 1, n) }()
	go func() { errc <- receiveAll(upstream, 1, n) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	go func() { errc <- sendAll(upstream, 2, n) }()
	go func() { errc <- receiveAll(client, 2, n) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
