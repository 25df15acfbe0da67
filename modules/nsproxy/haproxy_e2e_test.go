package nsproxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// HAProxy, bound inside two namespaces (bind ... namespace X), sends PROXY
// v2 with the NETNS TLV to Caddy in its own namespace; Caddy's layer4
// server reads the header (caddy-l4's proxy_protocol handler) and
// netns_proxy dials netns/{l4.proxy_protocol.netns}/...: each client
// reaches the backend of the namespace it connected from. The
// proxy_protocol_netns matcher sees the same name.
func TestHAProxySendsNetnsToCaddy(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	for _, ns := range nss {
		startBackend(t, ns, "127.0.0.1:9000", "in-"+ns)
	}
	caddyPort := nstest.FreePort(t)
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	layer4 {
		127.0.0.1:%d {
			route {
				proxy_protocol
			}
			@second proxy_protocol_netns %s
			route @second {
				netns_proxy netns/{l4.proxy_protocol.netns}/tcp/127.0.0.1:9000 {
					upstream netns/%s/tcp/127.0.0.2:9000
				}
			}
			route {
				netns_proxy netns/{l4.proxy_protocol.netns}/tcp/127.0.0.1:9000
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), caddyPort, nss[1], nss[1]), "caddyfile")
	nstest.HAProxy(t, nstest.HAProxySendingNetns(nss, 7000, caddyPort))
	for _, ns := range nss {
		nstest.WaitListening(t, ns, "127.0.0.1:7000")
		for range 3 {
			expectAnswer(t, ns, "tcp", "127.0.0.1:7000", "in-"+ns)
		}
	}
}

// Caddy's netns_proxy, with proxy_protocol v2 and proxy_protocol_netns,
// sends the namespace each connection arrived in to HAProxy
// (accept-proxy), whose server ... namespace * dials the backend inside
// the namespace the TLV names (among those in its namespace_list).
func TestCaddySendsNetnsToHAProxy(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	for _, ns := range nss {
		startBackend(t, ns, "127.0.0.1:9000", "in-"+ns)
	}
	haPort := nstest.FreePort(t)
	nstest.HAProxy(t, nstest.HAProxyDialingNetns(nss, haPort, "127.0.0.1:9000"))
	nstest.WaitListening(t, "", fmt.Sprintf("127.0.0.1:%d", haPort))
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	layer4 {
		netns/%s/tcp/127.0.0.1:8000 netns/%s/tcp/127.0.0.1:8000 {
			route {
				netns_proxy 127.0.0.1:%d {
					proxy_protocol v2
					proxy_protocol_netns
				}
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), nss[0], nss[1], haPort), "caddyfile")
	for _, ns := range nss {
		nstest.WaitListening(t, ns, "127.0.0.1:8000")
		for range 3 {
			expectAnswer(t, ns, "tcp", "127.0.0.1:8000", "in-"+ns)
		}
	}
}

// A chain HAProxy -> Caddy -> HAProxy keeps the namespace the client came
// from: the first HAProxy (bind ... namespace X) sends it in the NETNS
// TLV, netns_proxy passes the received name on, and the last HAProxy
// (server ... namespace *) dials the backend in X.
func TestChainKeepsOriginNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	for _, ns := range nss {
		startBackend(t, ns, "127.0.0.1:9000", "in-"+ns)
	}
	caddyPort, lastPort := nstest.FreePort(t), nstest.FreePort(t)
	nstest.HAProxy(t, fmt.Sprintf(`
namespace_list
	namespace %[1]s
	namespace %[2]s
frontend first
	bind 127.0.0.1:7000 namespace %[1]s
	bind 127.0.0.1:7000 namespace %[2]s
	default_backend to_caddy
backend to_caddy
	server caddy 127.0.0.1:%[3]d send-proxy-v2
frontend last
	bind 127.0.0.1:%[4]d accept-proxy
	default_backend to_ns
backend to_ns
	server ns 127.0.0.1:9000 namespace *
`, nss[0], nss[1], caddyPort, lastPort))
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	layer4 {
		127.0.0.1:%d {
			route {
				proxy_protocol
				netns_proxy 127.0.0.1:%d {
					proxy_protocol v2
					proxy_protocol_netns
				}
			}
		}
	}
}
`, strings.TrimPrefix(admin.URL, "http://"), caddyPort, lastPort), "caddyfile")
	for _, ns := range nss {
		nstest.WaitListening(t, ns, "127.0.0.1:7000")
		for range 3 {
			expectAnswer(t, ns, "tcp", "127.0.0.1:7000", "in-"+ns)
		}
	}
}
