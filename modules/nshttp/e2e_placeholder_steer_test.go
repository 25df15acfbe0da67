package nshttp_test

import (
	"fmt"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// An upstream whose namespace comes from a request header is steered by
// the client: with an allow list, it may reach only the namespaces the list
// names. Caddy's own namespace, which a config may always reach through a
// plain address, must not be reachable by a header value such as
// /proc/self/ns/net (a decoy listens there on the upstream's port).
func TestHeaderPlaceholderCannotSteerIntoOwnNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	port := nstest.FreePort(t)
	serveHTTP(t, back, fmt.Sprintf("127.0.0.1:%d", port), back, nil)
	serveHTTP(t, "", fmt.Sprintf("127.0.0.1:%d", port), "caddy-own-namespace", nil)
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	netns {
		allow %[2]s %[3]s
	}
}
http://:8080 {
	bind netns/%[2]s/tcp/127.0.0.1
	reverse_proxy netns/{http.request.header.X-Tenant}/tcp/127.0.0.1:%[4]d {
		transport netns
	}
}
`, adminHost(admin), client, back, port), "caddyfile")

	got, err := curl(t, client, "-H", "X-Tenant: "+back, "http://127.0.0.1:8080/")
	if want := back + " HTTP/1.1"; err != nil || got != want {
		t.Fatalf("X-Tenant %s (allowed): got %q, %v; want %q", back, got, err, want)
	}
	for _, v := range []string{"/proc/self/ns/net", "/proc/thread-self/ns/net", "/var/run/netns/../../../proc/self/ns/net"} {
		got, err := curl(t, client, "-H", "X-Tenant: "+v, "-w", " %{http_code}", "http://127.0.0.1:8080/")
		if err != nil || got != "502" {
			t.Errorf("X-Tenant %s: got %q, %v; want 502 (refused by the allow list)", v, got, err)
		}
	}
}
