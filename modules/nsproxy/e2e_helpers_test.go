package nsproxy_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4/layer4"
	_ "github.com/mholt/caddy-l4/modules/l4proxy"
	_ "github.com/mholt/caddy-l4/modules/l4regexp"

	_ "github.com/caddy-netns/caddy-netns"
	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func TestMain(m *testing.M) {
	e2e.MaybeRunCaddy()
	os.Exit(m.Run())
}

// openNS opens a namespace by name; "" is the process's own (nil).
func openNS(t testing.TB, ns string) *nsenter.Namespace {
	t.Helper()
	if ns == "" {
		return nil
	}
	n, err := nsenter.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// backend answers each line with "<tag>: <line>" over TCP and UDP on addr
// inside namespace ns. Stop closes both sockets and open connections.
type backend = nstest.Backend

func startBackend(t testing.TB, ns, addr, tag string) *backend {
	t.Helper()
	return nstest.StartBackend(t, ns, addr, tag)
}

func dialIn(ns, network, addr string) (net.Conn, error) { return nstest.Dial(ns, network, addr) }

func askOn(c net.Conn, line string) (string, error) { return nstest.AskOn(c, line) }

func ask(ns, network, addr, line string) (string, error) { return nstest.Ask(ns, network, addr, line) }

// expectAnswer checks that a client in ns gets tag's answer over network.
func expectAnswer(t testing.TB, ns, network, addr, tag string) {
	t.Helper()
	nstest.ExpectAnswer(t, ns, network, addr, tag)
}

// proxyServer is a layer4 server JSON object with one netns_proxy route.
func proxyServer(listen []string, handler string) string {
	q := make([]string, len(listen))
	for i, l := range listen {
		q[i] = fmt.Sprintf("%q", l)
	}
	return fmt.Sprintf(`{"listen":[%s],"routes":[{"handle":[%s]}]}`, strings.Join(q, ","), handler)
}

func layer4JSON(admin *e2e.Admin, servers map[string]string) string {
	var parts []string
	for name, s := range servers {
		parts = append(parts, fmt.Sprintf("%q:%s", name, s))
	}
	return fmt.Sprintf(`{%s,"logging":{"logs":{"default":{"level":"WARN"}}},"apps":{"layer4":{"servers":{%s}}}}`,
		admin.WithAdmin(), strings.Join(parts, ","))
}
