package nshttp_test

import (
	"fmt"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// HAProxy bound inside two namespaces sends PROXY v2 with the NETNS TLV to
// an HTTP site of Caddy's (proxy_protocol listener wrapper); the site
// reaches, through netns/{http.request.proxy_protocol.netns}/..., the
// backend in the namespace the client connected from, and the
// proxy_protocol_netns matcher sees the same name.
func TestHAProxySendsNetnsToCaddyHTTP(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	for _, ns := range nss {
		serveHTTP(t, ns, "127.0.0.1:9000", ns, nil)
	}
	port := nstest.FreePort(t)
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	servers {
		listener_wrappers {
			proxy_protocol {
				allow 127.0.0.1/32
			}
		}
	}
}
http://:%[2]d {
	bind 127.0.0.1
	@second {
		proxy_protocol_netns %[3]s
		path /which
	}
	respond @second "second {http.request.proxy_protocol.netns}"
	respond /which "other"
	reverse_proxy netns/{http.request.proxy_protocol.netns}/tcp/127.0.0.1:9000 {
		transport netns
	}
}
`, adminHost(admin), port, nss[1]), "caddyfile")
	nstest.HAProxy(t, nstest.HAProxySendingNetns(nss, 7000, port))
	for _, ns := range nss {
		nstest.WaitListening(t, ns, "127.0.0.1:7000")
		for i := range 3 {
			if got, err := curl(t, ns, "http://127.0.0.1:7000/"); got != ns+" HTTP/1.1" {
				t.Errorf("client in %s (#%d): got %q, %v", ns, i, got, err)
			}
		}
	}
	if got, _ := curl(t, nss[1], "http://127.0.0.1:7000/which"); got != "second "+nss[1] {
		t.Errorf("matcher, client in %s: got %q", nss[1], got)
	}
	if got, _ := curl(t, nss[0], "http://127.0.0.1:7000/which"); got != "other" {
		t.Errorf("matcher, client in %s: got %q", nss[0], got)
	}
}

// Caddy's netns transport, with proxy_protocol v2 and
// proxy_protocol_netns, sends the namespace each request arrived in to
// HAProxy (accept-proxy), whose server ... namespace * reaches the
// backend in that namespace.
func TestCaddyHTTPSendsNetnsToHAProxy(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	for _, ns := range nss {
		serveHTTP(t, ns, "127.0.0.1:9000", ns, nil)
	}
	haPort := nstest.FreePort(t)
	nstest.HAProxy(t, nstest.HAProxyDialingNetns(nss, haPort, "127.0.0.1:9000"))
	nstest.WaitListening(t, "", fmt.Sprintf("127.0.0.1:%d", haPort))
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	auto_https off
}
http://:8080 {
	bind netns/%s/tcp/127.0.0.1 netns/%s/tcp/127.0.0.1
	reverse_proxy 127.0.0.1:%d {
		transport netns {
			proxy_protocol v2
			proxy_protocol_netns
		}
	}
}
`, adminHost(admin), nss[0], nss[1], haPort), "caddyfile")
	for i := range 3 {
		for _, ns := range nss {
			if got, err := curl(t, ns, "http://127.0.0.1:8080/"); got != ns+" HTTP/1.1" {
				t.Errorf("client in %s (#%d): got %q, %v", ns, i, got, err)
			}
		}
	}
}
