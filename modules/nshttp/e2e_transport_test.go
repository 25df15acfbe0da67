package nshttp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// A real curl in a client namespace reaches, through reverse_proxy with the
// netns transport, HTTP backends that exist only in another namespace:
// HTTP/1.1, h2c, HTTPS (HTTP/2 over TLS, the certificate verified for
// the upstream's IP) and HTTP/1.1 to an IPv6 upstream. A decoy on the same port in Caddy's own namespace
// would answer a dial made there.
func TestReverseProxyIntoNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	port, tlsPort := nstest.FreePort(t), nstest.FreePort(t)
	cert, pemFile := selfSigned(t)
	serveHTTP(t, back, fmt.Sprintf("127.0.0.1:%d", port), back, nil)
	serveHTTP(t, back, fmt.Sprintf("127.0.0.1:%d", tlsPort), back, &cert)
	serveHTTP(t, "", fmt.Sprintf("127.0.0.1:%d", port), "caddy-own-namespace", nil)
	serveHTTP(t, "", fmt.Sprintf("127.0.0.1:%d", tlsPort), "caddy-own-namespace", &cert)
	serveHTTP(t, back, fmt.Sprintf("[::1]:%d", port), back+"-v6", nil)

	admin.MustLoad(t, fmt.Sprintf(`{
	admin %[1]s
	auto_https off
}
http://:8080 {
	bind netns/%[2]s/tcp/127.0.0.1
	handle /h1 {
		reverse_proxy netns/%[3]s/tcp/127.0.0.1:%[4]d {
			transport netns
		}
	}
	handle /h2c {
		reverse_proxy netns/%[3]s/tcp/127.0.0.1:%[4]d {
			transport netns {
				versions h2c
			}
		}
	}
	handle /https {
		reverse_proxy netns/%[3]s/tcp/127.0.0.1:%[5]d {
			transport netns {
				tls
				tls_trust_pool file %[6]s
			}
		}
	}
	handle /v6 {
		reverse_proxy netns/[%[3]s/tcp6/::1]:%[4]d {
			transport netns
		}
	}
	handle /https1 {
		reverse_proxy netns/%[3]s/tcp/127.0.0.1:%[5]d {
			transport netns {
				tls
				tls_trust_pool file %[6]s
				versions 1.1
			}
		}
	}
}
`, adminHost(admin), client, back, port, tlsPort, pemFile), "caddyfile")

	for path, want := range map[string]string{
		"/h1":     back + " HTTP/1.1",
		"/h2c":    back + " HTTP/2.0",
		"/https":  back + " HTTP/2.0 tls",
		"/https1": back + " HTTP/1.1 tls",
		"/v6":     back + "-v6 HTTP/1.1",
	} {
		for i := range 3 { // and again over pooled connections
			got, err := curl(t, client, "http://127.0.0.1:8080"+path)
			if err != nil || got != want {
				t.Errorf("curl %s (#%d) from %s: got %q, %v; want %q", path, i, client, got, err, want)
			}
		}
	}
}

// With active health checks, Caddy's checker reaches the upstream in its
// namespace through the transport: a healthy backend keeps serving; the
// check's URL is built from the upstream's IP, not from the netns address.
func TestActiveHealthCheckInNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	port := nstest.FreePort(t)
	serveHTTP(t, back, fmt.Sprintf("127.0.0.1:%d", port), back, nil)
	// A second upstream whose namespace exists but where nothing listens:
	// the checker must mark it down so that every request goes to the first.
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %[1]s
	auto_https off
}
http://:8080 {
	bind netns/%[2]s/tcp/127.0.0.1
	reverse_proxy netns/%[3]s/tcp/127.0.0.1:%[4]d netns/%[3]s/tcp/127.0.0.2:%[4]d {
		lb_policy round_robin
		health_uri /
		health_interval 200ms
		health_timeout 2s
		health_body %[3]s
		transport netns
	}
}
`, adminHost(admin), client, back, port), "caddyfile")
	waitFor(t, func() bool {
		for range 4 {
			if got, _ := curl(t, client, "http://127.0.0.1:8080/"); got != back+" HTTP/1.1" {
				return false
			}
		}
		return true
	})
}

func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	for range 50 {
		if ok() {
			return
		}
		sleep()
	}
	t.Fatal("condition not met in time")
}

// The namespace of an upstream with a fixed address is checked when the
// config loads: one that does not exist, or that the allow list refuses,
// fails the load with an error naming it, and the old config keeps
// serving.
func TestUpstreamNamespaceErrorsFailTheLoad(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 2)
	client, back := nss[0], nss[1]
	port := nstest.FreePort(t)
	serveHTTP(t, back, fmt.Sprintf("127.0.0.1:%d", port), back, nil)
	site := func(global, upstream string) string {
		return fmt.Sprintf(`{
	admin %s
	auto_https off
	%s
}
http://:8080 {
	bind netns/%s/tcp/127.0.0.1
	reverse_proxy %s {
		transport netns
	}
}
`, adminHost(admin), global, client, upstream)
	}
	good := fmt.Sprintf("netns/%s/tcp/127.0.0.1:%d", back, port)
	admin.MustLoad(t, site("", good), "caddyfile")
	missing := nstest.Name("gone")
	for _, c := range []struct{ name, global, upstream, want string }{
		{"missing", "", fmt.Sprintf("netns/%s/tcp/127.0.0.1:%d", missing, port), `namespace "` + missing + `"`},
		{"refused", "netns {\n\t\tallow " + client + "\n\t}", good, `namespace "` + back + `"`},
		{"name", "", fmt.Sprintf("netns/%s/tcp/localhost:%d", back, port), "must be an IP address"},
		{"udp", "", fmt.Sprintf("netns/%s/udp/127.0.0.1:%d", back, port), "cannot carry HTTP"},
	} {
		err := admin.Load(site(c.global, c.upstream), "caddyfile")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: load error %v; want one containing %q", c.name, err, c.want)
		}
		if got, err := curl(t, client, "http://127.0.0.1:8080/"); got != back+" HTTP/1.1" {
			t.Errorf("%s: after the failed load: got %q, %v; want the old config serving", c.name, got, err)
		}
	}
}

// A namespace deleted and re-created under the same name is a new
// namespace: the next request goes to the backend in the new one, not over
// a kept-alive connection into the old one (which lives on as long as its
// sockets do).
func TestRecreatedNamespaceGetsNewConnections(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	client := nstest.Add(t, 1)[0]
	back := nstest.Name("nhr")
	nstest.AddNamed(t, back)
	oldBackend := serveHTTP(t, back, "127.0.0.1:9000", "old", nil)
	defer oldBackend()
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	auto_https off
}
http://:8080 {
	bind netns/%s/tcp/127.0.0.1
	reverse_proxy netns/%s/tcp/127.0.0.1:9000 {
		transport netns
	}
}
`, adminHost(admin), client, back), "caddyfile")
	if got, err := curl(t, client, "http://127.0.0.1:8080/"); got != "old HTTP/1.1" {
		t.Fatalf("before: got %q, %v", got, err)
	}
	nstest.Del(back)
	nstest.AddNamed(t, back)
	serveHTTP(t, back, "127.0.0.1:9000", "new", nil)
	for i := range 3 {
		if got, err := curl(t, client, "http://127.0.0.1:8080/"); got != "new HTTP/1.1" {
			t.Errorf("after re-creating %s (#%d): got %q, %v; want the new namespace's backend", back, i, got, err)
		}
	}
}
