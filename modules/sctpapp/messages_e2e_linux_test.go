//go:build linux && !386

package sctpapp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
)

// forceBuffers raises c's socket buffers to n bytes each way past
// net.core.[rw]mem_max (the tests run as root), so that the test's own
// ends never limit a message: only the proxy in between is tested.
func forceBuffers(t *testing.T, c *sctpnet.Conn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Error(err)
		return
	}
	rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n); err != nil {
				t.Errorf("setsockopt %d: %v", opt, err)
			}
		}
	})
}

// bigBuffers is the socket buffer size of the test's own ends. The
// receive window an association advertises comes from the receive buffer
// when it starts, so it is set before listen and connect.
const bigBuffers = 4 << 20

// startEcho starts an upstream in ns that echoes every message, with
// buffers large enough for any message of these tests.
func startEcho(t *testing.T, ns *sctptest.Netns) upstream {
	t.Helper()
	ln, err := sctpnet.Config{ReadBuffer: bigBuffers, WriteBuffer: bigBuffers}.Listen(context.Background(), ns.Socket, "sctp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.AcceptConn(context.Background())
			if err != nil {
				return
			}
			forceBuffers(t, c, 2*bigBuffers)
			go sctprelay.Echo(c)
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return upstream{addr: "127.0.0.1:" + port}
}

// bigClient dials addr from ns with buffers large enough for any message
// of these tests.
func bigClient(t *testing.T, ns *sctptest.Netns, addr string) *sctpnet.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := sctpnet.Config{OutStreams: clientStreams, MaxInStreams: clientStreams, ReadBuffer: bigBuffers, WriteBuffer: bigBuffers}
	c, err := cfg.Dial(ctx, ns.Socket, "sctp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	forceBuffers(t, c, 2*bigBuffers)
	return c
}

// A 1 MiB message and a 300,000-byte one (both above the kernel's
// default 208 KiB socket buffers) pass through a proxy with the default
// max_message_size, both ways, intact.
func TestProxyLargeMessage(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	up := startEcho(t, nsU)
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
	}, ""))
	c := bigClient(t, nsC, "127.0.0.1:38412")
	specs := []spec{
		{idx: 0, size: 1 << 20, info: sctpnet.Info{Stream: 1, PPID: sctpnet.RawPPID(60)}},
		{idx: 1, size: 300000, info: sctpnet.Info{Stream: 2, PPID: sctpnet.RawPPID(61)}},
		{idx: 2, size: 10, info: sctpnet.Info{Stream: 1, PPID: sctpnet.RawPPID(62)}},
	}
	exchange(t, c, specs, 0, true)
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := readEndEOF(c); err != nil {
		t.Fatal(err)
	}
}

// A message above max_message_size aborts its association (and only
// it), and the log says why; a message of exactly the limit passes.
func TestProxyMessageTooLarge(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	up := startEcho(t, nsU)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	server := strings.Replace(proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
		`{"listen"`, `{"max_message_size":100000,"listen"`, 1)
	config := a.sctpConfig(map[string]string{"ns": server}, "")
	config = strings.Replace(config, `"apps":`, fmt.Sprintf(`"logging":{"logs":{"default":{"writer":{"output":"file","filename":%q},"level":"WARN"}}},"apps":`, logFile), 1)
	a.mustLoad(t, config)

	small := bigClient(t, nsC, "127.0.0.1:38412")
	big := bigClient(t, nsC, "127.0.0.1:38412")
	msg := func(idx, size int) spec {
		return spec{idx: idx, size: size, info: sctpnet.Info{Stream: 0, PPID: sctpnet.RawPPID(uint32(70 + idx))}}
	}
	exchange(t, small, []spec{msg(0, 100)}, 0, true)
	exchange(t, big, []spec{msg(1, 100000)}, 0, true) // the limit itself passes

	if _, err := big.WriteMsg(msg(2, 100001).payload(), msg(2, 100001).info); err != nil {
		t.Fatal(err)
	}
	if err := readEnd(big); !errors.Is(err, sctpnet.ErrAborted) {
		t.Fatalf("association that sent 100001 bytes with max_message_size 100000: %v, want an abort", err)
	}
	exchange(t, small, []spec{msg(3, 50000), msg(4, 1)}, 0, true) // the other one goes on

	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(logFile)
		if bytes.Contains(log, []byte("message larger than max_message_size: association aborted")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the message in the log:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The mixed-size echo of issue 18: 1000 messages of 1, 100, 1400, 65536
// and 200000 bytes on 16 streams (the last unordered) through the proxy,
// sent while the echoes come back; every one arrives whole, once, on its
// stream, in order per ordered stream. The time is logged, not asserted.
func TestProxyMixedSizes(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	up := startEcho(t, nsU)
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
	}, ""))
	c := bigClient(t, nsC, "127.0.0.1:38412")
	mixed := []int{1, 100, 1400, 65536, 200000}
	specs := makeSpecs(1000, 16, 300000)
	total := 0
	for i := range specs {
		specs[i].size = mixed[i%len(mixed)]
		total += specs[i].size
	}
	start := time.Now()
	exchange(t, c, specs, 0, true)
	t.Logf("1000 messages, %d bytes each way, echoed through the proxy in %v", total, time.Since(start))
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := readEndEOF(c); err != nil {
		t.Fatal(err)
	}
}

// A Caddyfile with tuning on the server and on the proxy loads, and the
// proxy's stream counts reach the upstream association (the other values
// are read back with getsockopt in TestTuningApplied).
func TestProxyTuningFromCaddyfile(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	specs := makeSpecs(5, 3, 9000)
	streams := make(chan [2]uint16, 1)
	up := startUpstream(t, nsU, replier(t, specs, 100000, streams))
	caddyfile := fmt.Sprintf(`{
	admin %s
	sctp {
		%s {
			max_message_size 1MiB
			tuning {
				rto_min 200ms
				heartbeat_interval off
				sack_frequency 1
			}
			route {
				proxy %s {
					tuning {
						out_streams 11
						in_streams 13
						rto_initial 800ms
						init_max_attempts 3
					}
				}
			}
		}
	}
}
`, strings.TrimPrefix(a.URL, "http://"), nsListen(nsC, "127.0.0.1:38412"), nsDial(nsU, up.addr))
	if err := a.Load(caddyfile, "caddyfile"); err != nil {
		t.Fatalf("%v\n%s", err, caddyfile)
	}
	c := mustDial(t, nsC, "127.0.0.1:38412")
	exchange(t, c, specs, 100000, false)
	select {
	case st := <-streams:
		if st != [2]uint16{11, 13} {
			t.Errorf("upstream association streams in/out = %v, want 11/13 from the proxy's tuning", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("upstream reported no stream counts")
	}
}
