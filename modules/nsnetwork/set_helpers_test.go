package nsnetwork_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// setPrefix returns a name prefix unique to this test run, so a set's
// pattern (prefix + "*") matches only the namespaces the test creates.
func setPrefix() string { return nstest.Name("nls") + "-" }

// addNamed creates namespaces with the given names and lo up, and removes
// them when the test ends.
func addNamed(t testing.TB, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "netns add %s\n", n)
	}
	t.Cleanup(func() { nstest.Del(names...) })
	nstest.Batch(t, b.String())
	for _, n := range names {
		if err := nstest.LoopbackUp(n); err != nil {
			t.Fatal(err)
		}
	}
}

// nsBackend answers each line with "<tag>: <line>" over TCP and UDP on
// addr inside namespace ns. Stop closes its sockets and connections (they
// would keep the namespace alive).
type nsBackend = nstest.Backend

func startNSBackend(t testing.TB, ns, addr, tag string) *nsBackend {
	t.Helper()
	return nstest.StartBackend(t, ns, addr, tag)
}

// setConfig is a layer4 server listening on the set pattern over tcp and
// udp, sending every connection to 127.0.0.1:9000 inside the namespace it
// arrived in (netns_proxy with the {l4.netns.*} placeholders), with a
// short UDP idle timeout so flows do not pin deleted namespaces for long.
func setConfig(admin *e2e.Admin, server, pattern, addr string) string {
	apps, _ := json.Marshal(map[string]any{"layer4": map[string]any{"servers": map[string]any{
		server: map[string]any{
			"listen":       []string{"netns/" + pattern + "/tcp/" + addr, "netns/" + pattern + "/udp/" + addr},
			"idle_timeout": int64(time.Second),
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler":   "netns_proxy",
				"upstreams": []any{map[string]any{"dial": "netns/{l4.netns.name}/{l4.netns.network}/127.0.0.1:9000"}},
				// An ended UDP flow's upstream socket is held for
				// udp_quarantine (default 10s) and, with it, its
				// namespace: keep it short so the tests that delete a
				// namespace see it freed within their wait.
				"udp_quarantine": int64(time.Second),
			}}}},
		},
	}}})
	return fmt.Sprintf(`{%s,"apps":%s}`, admin.WithAdmin(), apps)
}

// poolHas reports whether the pool holds a socket on network/address in
// the namespace id.
func poolHas(id nsenter.ID, network, address string) bool {
	for _, s := range nsnetwork.Sockets() {
		if s.NamespaceID == id && s.Network == network && s.Address == address {
			return true
		}
	}
	return false
}

// eventually polls cond every 10ms until it holds or d passes, and returns
// how long it took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v", what, d)
	return 0
}

// answers reports whether a client in ns gets "<ns>: ping" over network.
func answers(ns, network, addr string) bool {
	got, err := ask(ns, network, addr, "ping")
	return err == nil && got == ns+": ping"
}

// linkExists reports whether interface name exists in namespace ns.
func linkExists(ns, name string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", name).Run() == nil
}

// heldBySocket reports whether any socket of this process belongs to the
// namespace id (asked of the kernel for each descriptor).
func heldBySocket(id nsenter.ID) bool {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil {
			continue
		}
		if link, _ := os.Readlink("/proc/self/fd/" + e.Name()); !strings.HasPrefix(link, "socket:") {
			continue
		}
		if got, err := nstest.SocketNS(fd); err == nil && got == id {
			return true
		}
	}
	return false
}

// dialFrom dials addr inside ns from the fixed local address laddr.
func dialFrom(ns, network, laddr, addr string) (net.Conn, error) {
	n, err := nsenter.Open(ns)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	pc, err := nsenter.ListenPacket(n, network, laddr)
	if err != nil {
		return nil, err
	}
	return &boundUDP{PacketConn: pc, to: addr}, nil
}

// boundUDP is a UDP client bound to a fixed local port.
type boundUDP struct {
	net.PacketConn
	to string
}

func (c *boundUDP) Write(b []byte) (int, error) {
	ua, err := net.ResolveUDPAddr("udp", c.to)
	if err != nil {
		return 0, err
	}
	return c.WriteTo(b, ua)
}

func (c *boundUDP) Read(b []byte) (int, error) {
	n, _, err := c.ReadFrom(b)
	return n, err
}

func (c *boundUDP) RemoteAddr() net.Addr { a, _ := net.ResolveUDPAddr("udp", c.to); return a }

// socketSince returns when the pool opened the socket.
func socketSince(t testing.TB, id nsenter.ID, network, address string) time.Time {
	t.Helper()
	for _, s := range nsnetwork.Sockets() {
		if s.NamespaceID == id && s.Network == network && s.Address == address {
			return s.Since
		}
	}
	t.Fatalf("no %s %s socket in %v", network, address, id)
	return time.Time{}
}
