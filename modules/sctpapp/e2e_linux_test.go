//go:build linux && !386

package sctpapp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/sctptest"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// The tests below drive the sctp app in a Caddy running in this process
// through its admin API. They need SCTP and root; where the host kernel
// has no SCTP they skip here and run in the qemu guest (TestSCTPGuest).

// clientStreams is how many streams test clients open each way.
const clientStreams = 20

// spec is one test message: its index, size and metadata. Every message
// of a test has its own PPID, which identifies it on arrival.
type spec struct {
	idx  int
	size int
	info sctpnet.Info
}

var sizes = []int{1, 2, 3, 100, 1452, 4096, 65535, 65536, 65537, 100000, 150000, 200 << 10}

// makeSpecs makes n messages of all sizes spread over streams streams;
// the last stream carries unordered messages.
func makeSpecs(n, streams int, ppidBase uint32) []spec {
	out := make([]spec, n)
	for i := range out {
		s := spec{idx: i, size: sizes[i%len(sizes)], info: sctpnet.Info{
			Stream: uint16(i % streams),
			PPID:   sctpnet.RawPPID(ppidBase + uint32(i)),
		}}
		if int(s.info.Stream) == streams-1 {
			s.info.Flags = sctpnet.FlagUnordered
		}
		out[i] = s
	}
	return out
}

func (s spec) payload() []byte {
	b := make([]byte, s.size)
	for j := range b {
		b[j] = byte(s.idx*7 + j*31 + j>>8)
	}
	return b
}

func complement(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = ^c
	}
	return out
}

// checker matches arriving messages against their specs by PPID and
// checks stream, unordered flag, content and per-stream order.
type checker struct {
	byNum  map[uint32]spec
	offset uint32 // added to the spec's PPID number by the sender
	seen   map[int]bool
	last   map[uint16]int
}

func newChecker(specs []spec, ppidBase, offset uint32) *checker {
	c := &checker{byNum: map[uint32]spec{}, offset: offset, seen: map[int]bool{}, last: map[uint16]int{}}
	for _, s := range specs {
		c.byNum[s.info.PPIDNumber()] = s
	}
	return c
}

// check returns the spec of the message, or what is wrong with it; want
// is the payload it should carry given its spec.
func (c *checker) check(msg []byte, info sctpnet.Info, want func(spec) []byte) (spec, error) {
	s, ok := c.byNum[info.PPIDNumber()-c.offset]
	switch {
	case !ok:
		return s, fmt.Errorf("message of %d bytes on stream %d with unexpected PPID %d (raw %#08x)", len(msg), info.Stream, info.PPIDNumber(), info.PPID)
	case c.seen[s.idx]:
		return s, fmt.Errorf("message %d twice", s.idx)
	case info.Stream != s.info.Stream:
		return s, fmt.Errorf("message %d on stream %d, want %d", s.idx, info.Stream, s.info.Stream)
	case info.Unordered() != s.info.Unordered():
		return s, fmt.Errorf("message %d unordered=%v, want %v", s.idx, info.Unordered(), s.info.Unordered())
	case len(msg) != s.size:
		return s, fmt.Errorf("message %d has %d bytes, want %d (boundaries lost)", s.idx, len(msg), s.size)
	case !bytes.Equal(msg, want(s)):
		return s, fmt.Errorf("message %d: content differs", s.idx)
	}
	if !s.info.Unordered() {
		if last, ok := c.last[s.info.Stream]; ok && last > s.idx {
			return s, fmt.Errorf("message %d after message %d on ordered stream %d", s.idx, last, s.info.Stream)
		}
		c.last[s.info.Stream] = s.idx
	}
	c.seen[s.idx] = true
	return s, nil
}

// upstream is a test server: an SCTP listener in a namespace (nil: this
// process's) whose associations are handed to serve.
type upstream struct {
	addr string // 127.0.0.1:port
}

func startUpstream(t *testing.T, ns *sctptest.Netns, serve func(*sctpnet.Conn)) upstream {
	t.Helper()
	var socket sctpnet.SocketFunc
	if ns != nil {
		socket = ns.Socket
	}
	ln, err := sctpnet.Listen(context.Background(), socket, "sctp", "127.0.0.1:0")
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
			go serve(c)
		}
	}()
	port := ln.Addr().(interface{ String() string }).String()
	_, p, _ := net.SplitHostPort(port)
	return upstream{addr: "127.0.0.1:" + p}
}

// replier checks every message against specs and answers it with the
// complement of its payload on the same stream, with the same unordered
// flag and PPID number + offset. It reports the association's stream
// counts on streams.
func replier(t *testing.T, specs []spec, offset uint32, streams chan<- [2]uint16) func(*sctpnet.Conn) {
	return func(c *sctpnet.Conn) {
		defer c.Close()
		if in, out, err := c.Streams(); err == nil && streams != nil {
			select {
			case streams <- [2]uint16{in, out}:
			default:
			}
		}
		chk := newChecker(specs, 0, 0)
		var buf []byte
		for {
			msg, info, err := c.ReadMessage(buf)
			if err != nil {
				return
			}
			buf = msg
			if _, err := chk.check(msg, info, spec.payload); err != nil {
				t.Errorf("upstream received: %v", err)
				c.Abort()
				return
			}
			reply := sctpnet.Info{Stream: info.Stream, PPID: sctpnet.RawPPID(info.PPIDNumber() + offset), Flags: info.Flags & sctpnet.FlagUnordered}
			if _, err := c.WriteMsg(complement(msg), reply); err != nil {
				t.Errorf("upstream reply: %v", err)
				return
			}
		}
	}
}

// dialFrom opens an association from inside ns (nil: this process's).
func dialFrom(t *testing.T, ns *sctptest.Netns, addr string) (*sctpnet.Conn, error) {
	t.Helper()
	var socket sctpnet.SocketFunc
	if ns != nil {
		socket = ns.Socket
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := sctpnet.Config{OutStreams: clientStreams, MaxInStreams: clientStreams}
	return cfg.Dial(ctx, socket, "sctp", addr)
}

func mustDial(t *testing.T, ns *sctptest.Netns, addr string) *sctpnet.Conn {
	t.Helper()
	c, err := dialFrom(t, ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends specs on c while reading the answers, which must be the
// complements with PPID number + offset (or the same messages when echo).
func exchange(t *testing.T, c *sctpnet.Conn, specs []spec, offset uint32, echo bool) {
	t.Helper()
	sent := make(chan error, 1)
	go func() {
		for _, s := range specs {
			if _, err := c.WriteMsg(s.payload(), s.info); err != nil {
				sent <- fmt.Errorf("sending message %d: %w", s.idx, err)
				return
			}
		}
		sent <- nil
	}()
	want := func(s spec) []byte { return complement(s.payload()) }
	if echo {
		want = spec.payload
	}
	chk := newChecker(specs, 0, offset)
	c.SetReadDeadline(time.Now().Add(3 * time.Minute))
	defer c.SetReadDeadline(time.Time{})
	var buf []byte
	for range specs {
		msg, info, err := c.ReadMessage(buf)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(chk.seen), err)
		}
		buf = msg
		if _, err := chk.check(msg, info, want); err != nil {
			t.Fatalf("client received: %v", err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// ping sends one message and expects its answer.
func ping(t *testing.T, c *sctpnet.Conn, s spec, offset uint32) {
	t.Helper()
	exchange(t, c, []spec{s}, offset, false)
}

func requireGuestSetup(t *testing.T) *admin {
	t.Helper()
	sctptest.RequireSCTP(t)
	sctptest.RequireRoot(t)
	return startCaddy(t)
}

func nsListen(ns *sctptest.Netns, hostport string) string {
	return "netns/" + ns.Name + "/sctp/" + hostport
}

func nsDial(ns *sctptest.Netns, hostport string) string {
	return "netns/" + ns.Name + "/sctp/" + hostport
}

// A client in one namespace reaches Caddy listening there, which proxies
// to an upstream in another namespace; a client in Caddy's namespace
// reaches Caddy's own listener, proxied to an upstream in Caddy's
// namespace. Messages of 1 B to 200 KiB on several streams, some
// unordered, arrive whole with their stream, PPID and flag, both ways, and
// the upstream association gets the client's stream counts.
func TestProxyCarriesMessagesBothWays(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	specs := makeSpecs(48, 6, 1000)
	streams := make(chan [2]uint16, 4)
	up := startUpstream(t, nsU, replier(t, specs, 100000, streams))
	own := startUpstream(t, nil, replier(t, specs, 100000, streams))
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns":  proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
		"own": proxyServer([]string{"sctp/127.0.0.1:38420"}, "sctp/"+own.addr),
	}, ""))

	for _, tc := range []struct {
		name string
		ns   *sctptest.Netns
		addr string
	}{
		{"namespace to namespace", nsC, "127.0.0.1:38412"},
		{"own namespace", nil, "127.0.0.1:38420"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, tc.ns, tc.addr)
			exchange(t, c, specs, 100000, false)
			select {
			case st := <-streams:
				if st != [2]uint16{clientStreams, clientStreams} {
					t.Errorf("upstream association streams in/out = %v, want %d/%d like the client's", st, clientStreams, clientStreams)
				}
			case <-time.After(5 * time.Second):
				t.Error("upstream reported no stream counts")
			}
			if err := c.Shutdown(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The echo handler, configured with a Caddyfile, answers every message
// with itself.
func TestEchoHandlerFromCaddyfile(t *testing.T) {
	a := requireGuestSetup(t)
	ns := sctptest.NewNetns(t, "")
	caddyfile := fmt.Sprintf("{\n\tadmin %s\n\tsctp {\n\t\t%s {\n\t\t\troute {\n\t\t\t\techo\n\t\t\t}\n\t\t}\n\t}\n}\n",
		strings.TrimPrefix(a.URL, "http://"), nsListen(ns, ":7"))
	if err := a.Load(caddyfile, "caddyfile"); err != nil {
		t.Fatalf("%v\n%s", err, caddyfile)
	}
	c := mustDial(t, ns, "127.0.0.1:7")
	exchange(t, c, makeSpecs(24, 4, 5000), 0, true)
}

// held is an upstream that hands its associations to the test.
func held(conns chan<- *sctpnet.Conn) func(*sctpnet.Conn) {
	return func(c *sctpnet.Conn) { conns <- c }
}

// readEnd reads from c until it ends and returns why.
func readEnd(c *sctpnet.Conn) error {
	c.SetReadDeadline(time.Now().Add(time.Minute))
	var buf []byte
	for range 1000 {
		msg, _, err := c.ReadMessage(buf)
		if err != nil {
			return err
		}
		buf = msg
	}
	return errors.New("still reading after 1000 messages")
}

// A graceful SHUTDOWN on either side reaches the other as one (reads end
// with io.EOF), and an ABORT reaches it as an ABORT.
func TestProxyPassesShutdownAndAbort(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	conns := make(chan *sctpnet.Conn, 1)
	up := startUpstream(t, nsU, held(conns))
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
	}, ""))

	// open returns the client and upstream ends of one proxied association,
	// after one message each way.
	open := func(t *testing.T) (client, server *sctpnet.Conn) {
		client = mustDial(t, nsC, "127.0.0.1:38412")
		if _, err := client.WriteMsg([]byte("hello"), sctpnet.Info{Stream: 1, PPID: sctpnet.RawPPID(60)}); err != nil {
			t.Fatal(err)
		}
		select {
		case server = <-conns:
		case <-time.After(30 * time.Second):
			t.Fatal("upstream got no association")
		}
		t.Cleanup(func() { server.Close() })
		server.SetReadDeadline(time.Now().Add(30 * time.Second))
		msg, info, err := server.ReadMessage(nil)
		if err != nil || string(msg) != "hello" || info.Stream != 1 || info.PPIDNumber() != 60 {
			t.Fatalf("upstream read %q %+v %v", msg, info, err)
		}
		if _, err := server.WriteMsg([]byte("hi"), sctpnet.Info{Stream: 2, PPID: sctpnet.RawPPID(61)}); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(30 * time.Second))
		msg, info, err = client.ReadMessage(nil)
		if err != nil || string(msg) != "hi" || info.Stream != 2 || info.PPIDNumber() != 61 {
			t.Fatalf("client read %q %+v %v", msg, info, err)
		}
		return client, server
	}
	isEOF := func(err error) bool { return errors.Is(err, io.EOF) }
	isAbort := func(err error) bool { return errors.Is(err, sctpnet.ErrAborted) }

	t.Run("client shuts down", func(t *testing.T) {
		client, server := open(t)
		if err := client.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := readEnd(server); !isEOF(err) {
			t.Errorf("upstream read: %v, want io.EOF", err)
		}
		if err := readEnd(client); !isEOF(err) {
			t.Errorf("client read: %v, want io.EOF", err)
		}
	})
	t.Run("upstream shuts down", func(t *testing.T) {
		client, server := open(t)
		if err := server.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := readEnd(client); !isEOF(err) {
			t.Errorf("client read: %v, want io.EOF", err)
		}
		if err := readEnd(server); !isEOF(err) {
			t.Errorf("upstream read: %v, want io.EOF", err)
		}
	})
	t.Run("client aborts", func(t *testing.T) {
		client, server := open(t)
		if err := client.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := readEnd(server); !isAbort(err) {
			t.Errorf("upstream read: %v, want an abort", err)
		}
	})
	t.Run("upstream aborts", func(t *testing.T) {
		client, server := open(t)
		if err := server.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := readEnd(client); !isAbort(err) {
			t.Errorf("client read: %v, want an abort", err)
		}
	})
	// Every association has ended, so has every relay.
	waitNoHandlers(t)
}

// waitNoHandlers waits until no association handler runs in this process
// (Caddy's included), and fails the test if one is still there after 20s.
func waitNoHandlers(t *testing.T) {
	t.Helper()
	buf := make([]byte, 4<<20)
	for range 200 {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "sctpapp.(*Server).handle") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("association handlers still running after their associations ended:\n%s", buf[:runtime.Stack(buf, true)])
}

// Unreachable upstreams (nothing listening, a missing namespace) are
// skipped for the next one; when none answers, the client's association
// is aborted.
func TestProxyFailsOver(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	specs := makeSpecs(12, 3, 7000)
	up := startUpstream(t, nsU, replier(t, specs, 100000, nil))
	dead := nsDial(nsU, "127.0.0.1:9") // nothing listens there
	missing := "netns/no-such-namespace/sctp/127.0.0.1:38412"

	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, dead, missing, nsDial(nsU, up.addr)),
	}, ""))
	c := mustDial(t, nsC, "127.0.0.1:38412")
	exchange(t, c, specs, 100000, false)

	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, dead, missing),
	}, ""))
	// Caddy aborts the association as soon as no upstream answers; the
	// abort can overtake the end of the client's own dial.
	c2, err := dialFrom(t, nsC, "127.0.0.1:38412")
	if err == nil {
		defer c2.Close()
		err = readEnd(c2)
	}
	if !errors.Is(err, sctpnet.ErrAborted) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client of a proxy with no reachable upstream: %v, want an abort", err)
	}
	c.Shutdown()
	if err := readEnd(c); !errors.Is(err, io.EOF) {
		t.Errorf("after shutdown the client read %v, want io.EOF", err)
	}
	waitNoHandlers(t)
}

// An association open through a reload keeps working with the upstream it
// had, while new associations go to the new config's upstream over the
// same listening socket.
func TestReloadKeepsAssociations(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	// Every message on an association is a different one of specs, so
	// that the upstreams can tell them apart.
	specs := makeSpecs(64, 4, 0)
	next := 0
	msg := func() spec { next++; return specs[next-1] }
	one := startUpstream(t, nsU, replier(t, specs, 100000, nil))
	two := startUpstream(t, nsU, replier(t, specs, 200000, nil))
	cfg := func(up upstream) string {
		return a.sctpConfig(map[string]string{
			"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
		}, "")
	}
	a.mustLoad(t, cfg(one))
	c := mustDial(t, nsC, "127.0.0.1:38412")
	ping(t, c, msg(), 100000)

	for i := range 3 {
		a.mustLoad(t, cfg(two))
		ping(t, c, msg(), 100000) // still the first upstream
		fresh := mustDial(t, nsC, "127.0.0.1:38412")
		ping(t, fresh, msg(), 200000)
		fresh.Shutdown()

		a.mustLoad(t, cfg(one))
		ping(t, c, msg(), 100000)
		fresh = mustDial(t, nsC, "127.0.0.1:38412")
		ping(t, fresh, msg(), 100000)
		fresh.Shutdown()
		var shared []nsnetwork.Socket
		for _, s := range nsnetwork.Sockets() {
			if s.Namespace == nsC.Name && s.Network == "sctp" {
				shared = append(shared, s)
			}
		}
		if len(shared) != 1 || shared[0].Handles != 1 {
			t.Errorf("after reload %d the pool holds %+v, want one socket with one handle", i, shared)
		}
		t.Logf("reload round %d: the held association and new ones work", i)
	}
	exchange(t, c, specs[next:next+24], 100000, false)
}

// IPv6 addresses in brackets work for listening and dialing, in Caddy's
// namespace and inside namespaces; sctp/:port listens dual-stack.
func TestProxyIPv6(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	specs := makeSpecs(8, 3, 3000)
	ln, err := sctpnet.Listen(context.Background(), nsU.Socket, "sctp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serve := replier(t, specs, 100000, nil)
	go func() {
		for {
			c, err := ln.AcceptConn(context.Background())
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	up := fmt.Sprintf("netns/[%s/sctp6/::1]:%s", nsU.Name, port)
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"v6": proxyServer([]string{fmt.Sprintf("netns/[%s/sctp6/::1]:38412", nsC.Name), "sctp6/[::1]:38430", "sctp/:38431"}, up),
	}, ""))
	for _, tc := range []struct {
		ns   *sctptest.Netns
		addr string
	}{{nsC, "[::1]:38412"}, {nil, "[::1]:38430"}, {nil, "[::1]:38431"}, {nil, "127.0.0.1:38431"}} {
		var socket sctpnet.SocketFunc
		if tc.ns != nil {
			socket = tc.ns.Socket
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := sctpnet.Config{OutStreams: clientStreams}.Dial(ctx, socket, "sctp", tc.addr)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		exchange(t, c, specs, 100000, false)
		c.Close()
	}
}

// Many associations at once each get their own answers, and every relay
// ends with its association.
func TestProxyManyAssociations(t *testing.T) {
	a := requireGuestSetup(t)
	nsC, nsU := sctptest.NewNetns(t, ""), sctptest.NewNetns(t, "")
	const clients = 30
	// Each client has its own PPID range, so a message crossing over to
	// another association is caught by both ends' checks.
	all := makeSpecs(clients*6, 3, 20000)
	for i := range all {
		all[i].size = min(all[i].size, 5000) // many small associations, not volume
	}
	up := startUpstream(t, nsU, replier(t, all, 100000, nil))
	a.mustLoad(t, a.sctpConfig(map[string]string{
		"ns": proxyServer([]string{nsListen(nsC, "127.0.0.1:38412")}, nsDial(nsU, up.addr)),
	}, ""))
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			c, err := dialFrom(t, nsC, "127.0.0.1:38412")
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			mine := all[i*6 : i*6+6]
			for _, s := range mine {
				if _, err := c.WriteMsg(s.payload(), s.info); err != nil {
					errs <- err
					return
				}
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			got := 0
			for range mine {
				msg, info, err := c.ReadMessage(nil)
				if err != nil {
					errs <- fmt.Errorf("client %d after %d answers: %w", i, got, err)
					return
				}
				n := info.PPIDNumber() - 100000
				if n < 20000+uint32(i*6) || n >= 20000+uint32(i*6+6) {
					errs <- fmt.Errorf("client %d got message with PPID %d of another association", i, n)
					return
				}
				if len(msg) != all[n-20000].size {
					errs <- fmt.Errorf("client %d: message %d has %d bytes", i, n-20000, len(msg))
					return
				}
				got++
			}
			if err := c.Shutdown(); err != nil {
				errs <- err
				return
			}
			errs <- readEndEOF(c)
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	waitNoHandlers(t)
}

func readEndEOF(c *sctpnet.Conn) error {
	if err := readEnd(c); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after shutdown: %v, want io.EOF", err)
	}
	return nil
}
