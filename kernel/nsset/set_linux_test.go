//go:build linux

package nsset

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/fanin"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// fileSocket is a member socket owned by the test.
type fileSocket struct{ f *os.File }

func (s fileSocket) File() *os.File { return s.f }
func (s fileSocket) Close() error   { return s.f.Close() }

// policy admits the namespaces admit says yes to, and opens a socket on
// 127.0.0.1:port in them.
func policy(network string, port string, admit func(spec string) bool) Policy {
	return Policy{
		Allows: func(spec string) error {
			if admit(spec) {
				return nil
			}
			return errors.New("not admitted")
		},
		Open: func(spec string) (nsenter.ID, Socket, error) {
			n, err := nsenter.Open(spec)
			if err != nil {
				return nsenter.ID{}, nil, err
			}
			defer n.Close()
			var f *os.File
			if network == "tcp" {
				f, err = nsenter.ListenFile(n, "tcp", "127.0.0.1:"+port)
			} else {
				f, err = nsenter.ListenPacketFile(n, "udp", "127.0.0.1:"+port)
			}
			if err != nil {
				return nsenter.ID{}, nil, err
			}
			return n.ID, fileSocket{f}, nil
		},
	}
}

func only(names ...string) func(string) bool {
	return func(spec string) bool {
		for _, n := range names {
			if spec == n {
				return true
			}
		}
		return false
	}
}

// Three handles of a stream set with different allow functions (members
// are opened under the newest's, which admits both): every
// connection goes to the one that admits its member, whichever took it
// from the fan-in; a closed handle returns net.ErrClosed (never the
// fan-in's ErrWoken); the last close closes the members.
func TestStreamHandlesRouteByAllow(t *testing.T) {
	nstest.Require(t)
	prefix := nstest.Name("nss") + "-"
	a, b := prefix+"a", prefix+"b"
	addNamespaces(t, a, b)
	stopped := make(chan struct{})
	s, err := New(Config{Dir: nsenter.RunDir, Glob: prefix + "*", Kind: Stream, Network: "tcp",
		OnStop: func() { close(stopped) }})
	if err != nil {
		t.Fatal(err)
	}
	ha, err := s.Listen(policy("tcp", "8000", only(a)))
	if err != nil {
		t.Fatal(err)
	}
	hbOnly, err := s.Listen(policy("tcp", "8000", only(b)))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := s.Listen(policy("tcp", "8000", only(a, b)))
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if got := len(s.Members()); got != 2 {
		t.Fatalf("%d members after Start, want 2", got)
	}

	type got struct {
		handle string
		member string
	}
	results := make(chan got, 100)
	var wg sync.WaitGroup
	for name, h := range map[string]*Listener{"a": ha, "ab": hb, "b": hbOnly} {
		wg.Go(func() {
			for {
				c, err := h.Accept()
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("handle %s: Accept: %v, want net.ErrClosed", name, err)
					}
					if errors.Is(err, fanin.ErrWoken) {
						t.Errorf("handle %s: ErrWoken reached the user", name)
					}
					return
				}
				m := c.(*fanin.Conn).Tag().(*Member)
				results <- got{name, m.NetnsName()}
				c.Close()
			}
		})
	}
	const each = 20
	for range each {
		for _, ns := range []string{a, b} {
			c, err := nstest.Dial(ns, "tcp", "127.0.0.1:8000")
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
	}
	for i := range 2 * each {
		select {
		case r := <-results:
			if (r.member == a && r.handle == "b") || (r.member == b && r.handle == "a") {
				t.Errorf("a connection in %s went to handle %s, which does not admit it", r.member, r.handle)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d connections accepted within 10 s (members %+v)", i, 2*each, s.Members())
		}
	}
	// Closing handles one by one: the others keep working.
	ha.Close()
	hbOnly.Close()
	c, err := nstest.Dial(a, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case r := <-results:
		if r.handle != "ab" {
			t.Errorf("after closing the others, handle %s accepted", r.handle)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the remaining handle accepts nothing")
	}
	hb.Close()
	wg.Wait()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the set did not stop with its last handle")
	}
	if _, err := nstest.Dial(a, "tcp", "127.0.0.1:8000"); err == nil {
		t.Fatal("the member still listens after the set stopped")
	}
	if _, err := s.Listen(policy("tcp", "8000", only(a))); !errors.Is(err, ErrStopped) {
		t.Fatalf("Listen on a stopped set: %v, want ErrStopped", err)
	}
}

// A datagram set over a static list: only the listed namespace is a
// member; ReadFrom names the member (its namespace identity and name) and
// the reply leaves from its socket; a deadline of one handle wakes only
// that handle.
func TestDatagramStaticList(t *testing.T) {
	nstest.Require(t)
	prefix := nstest.Name("nss") + "-"
	a, b := prefix+"a", prefix+"b"
	addNamespaces(t, a, b)
	s, err := New(Config{Static: []string{a}, Kind: Datagram, Network: "udp"})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := s.ListenPacket(policy("udp", "8053", func(string) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s.Start()
	if ms := s.Members(); len(ms) != 1 || ms[0].Spec != a {
		t.Fatalf("members %+v, want only %s", ms, a)
	}
	c, err := nstest.Dial(a, "udp", "127.0.0.1:8053")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	fa := from.(*fanin.Addr)
	m := fa.Tag().(*Member)
	if m.NetnsID() != nstest.ID(t, a) || m.NetnsName() != a || !strings.HasSuffix(fa.String(), "%"+a) {
		t.Fatalf("datagram from %v (member %s, %v), want member %s", fa, m.NetnsName(), m.NetnsID(), a)
	}
	if _, err := pc.WriteTo(buf[:n], from); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("reply: %q %v", buf[:n], err)
	}
	// A deadline in the past fails at once, and the zero time lifts it.
	pc.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := pc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past its deadline: %v", err)
	}
	pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := pc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom waiting past its deadline: %v", err)
	}
}

func addNamespaces(t *testing.T, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		b.WriteString("netns add " + n + "\n")
	}
	t.Cleanup(func() { nstest.Del(names...) })
	nstest.Batch(t, b.String())
	for _, n := range names {
		if err := nstest.LoopbackUp(n); err != nil {
			t.Fatal(err)
		}
	}
}
