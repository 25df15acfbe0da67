package nsnetwork_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4/layer4"
	_ "github.com/mholt/caddy-l4/modules/l4echo"
	_ "github.com/mholt/caddy-l4/modules/l4proxy"

	_ "github.com/caddy-netns/caddy-netns"
	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

func TestMain(m *testing.M) {
	e2e.MaybeRunCaddy()
	os.Exit(m.Run())
}

// backend answers each line it receives, over TCP and UDP on the same
// loopback port in the process's namespace, with "<tag>: <line>".
type backend struct {
	tag  string
	port int
}

func startBackend(t *testing.T, tag string) backend {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	var port int
	for try := 0; ; try++ {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		if pc, err = net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			// It answers every flow of every namespace: room for a
			// datagram from each (the default buffer holds ~200).
			_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
			break
		}
		ln.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	nstest.Serve(t, tag, ln, pc)
	return backend{tag: tag, port: port}
}

// route is one layer4 server: listen addresses proxied to a backend.
type route struct {
	listen []string
	dial   string // host:port, prefixed with udp/ for UDP
}

func layer4Config(admin *e2e.Admin, routes map[string]route) string {
	return layer4ConfigIdle(admin, routes, "")
}

// layer4ConfigIdle is layer4Config with the servers' idle_timeout set.
func layer4ConfigIdle(admin *e2e.Admin, routes map[string]route, idle string) string {
	servers := map[string]any{}
	for name, r := range routes {
		srv := map[string]any{
			"listen": r.listen,
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler":   "proxy",
				"upstreams": []any{map[string]any{"dial": []string{r.dial}}},
			}}}},
		}
		if idle != "" {
			srv["idle_timeout"] = idle
		}
		servers[name] = srv
	}
	apps, _ := json.Marshal(map[string]any{"layer4": map[string]any{"servers": servers}})
	return fmt.Sprintf(`{%s,"apps":%s}`, admin.WithAdmin(), apps)
}

// nsRoutes listens on tcp and udp addr in namespace ns and sends both to b.
func nsRoutes(routes map[string]route, ns, addr string, b backend) {
	routes[ns+"-tcp"] = route{[]string{"netns/" + ns + "/tcp/" + addr}, fmt.Sprintf("127.0.0.1:%d", b.port)}
	routes[ns+"-udp"] = route{[]string{"netns/" + ns + "/udp/" + addr}, fmt.Sprintf("udp/127.0.0.1:%d", b.port)}
}

// ask sends one line from inside namespace ns (the process's own if ns is
// "") and returns the answer line.
func ask(ns, network, addr, line string) (string, error) { return nstest.Ask(ns, network, addr, line) }

func askOn(c net.Conn, line string) (string, error) { return nstest.AskOn(c, line) }

func dialIn(ns, network, addr string) (net.Conn, error) { return nstest.Dial(ns, network, addr) }

// expectAnswer checks that a client in ns gets tag's answer over network.
func expectAnswer(t *testing.T, ns, network, addr, tag string) {
	t.Helper()
	nstest.ExpectAnswer(t, ns, network, addr, tag)
}

// expectNoAnswer checks that nothing answers a client in ns over network.
func expectNoAnswer(t *testing.T, ns, network, addr string) {
	t.Helper()
	got, err := ask(ns, network, addr, "ping")
	if err == nil {
		t.Errorf("client in %q, %s %s: answered %q, want nothing", ns, network, addr, got)
	}
}
