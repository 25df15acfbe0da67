package nshttp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// One site served on a namespace set reaches, through
// netns/{http.request.netns.name}/..., the backend in the namespace each
// request arrived in: 50 namespaces, each with its own backend on the same
// address, asked concurrently over kept-alive connections; not one answer
// may come from another namespace. The netns matcher matches the arrival
// namespace.
func TestSetRoutesEachNamespaceToItsBackend(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	const n = 50
	prefix := nstest.Name("nhs") + "-"
	nss := make([]string, n)
	for i := range nss {
		nss[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	nstest.AddNamed(t, nss...)
	for _, ns := range nss {
		serveHTTP(t, ns, "127.0.0.1:9000", ns, nil)
	}
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	auto_https off
}
http://:8080 {
	bind netns/%s*/tcp/127.0.0.1
	@first {
		netns %s
		path /match
	}
	respond @first "matched {http.request.netns.name} {http.request.netns.inode}"
	respond /match "not matched"
	reverse_proxy netns/{http.request.netns.name}/tcp/127.0.0.1:9000 {
		transport netns
	}
}
`, adminHost(admin), prefix, nss[0]), "caddyfile")

	// A real curl from a few members.
	for _, ns := range []string{nss[0], nss[n/2], nss[n-1]} {
		if got, err := curl(t, ns, "http://127.0.0.1:8080/"); got != ns+" HTTP/1.1" {
			t.Errorf("curl from %s: got %q, %v", ns, got, err)
		}
	}
	if got, _ := curl(t, nss[0], "http://127.0.0.1:8080/match"); got != fmt.Sprintf("matched %s %d", nss[0], nstest.ID(t, nss[0]).Ino) {
		t.Errorf("matcher in %s: got %q", nss[0], got)
	}
	if got, _ := curl(t, nss[1], "http://127.0.0.1:8080/match"); got != "not matched" {
		t.Errorf("matcher in %s: got %q", nss[1], got)
	}

	// Every member concurrently, several rounds over kept-alive client
	// connections (Caddy pools its upstream connections).
	const rounds = 6
	var mu sync.Mutex
	var wrong, failed, ok int
	var wg sync.WaitGroup
	for _, ns := range nss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := nsClient(ns, "127.0.0.1:8080")
			defer c.CloseIdleConnections()
			for range rounds {
				got, err := get(c, "http://127.0.0.1:8080/")
				mu.Lock()
				switch {
				case err != nil:
					failed++
					t.Errorf("%s: %v", ns, err)
				case got != ns+" HTTP/1.1":
					wrong++
					t.Errorf("%s: answer %q from another namespace", ns, got)
				default:
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d namespaces x %d requests: %d right, %d from another namespace, %d failed", n, rounds, ok, wrong, failed)
	if wrong != 0 || failed != 0 || ok != n*rounds {
		t.Fatalf("%d right, %d cross-namespace, %d failed; want %d right", ok, wrong, failed, n*rounds)
	}
}

// An upstream namespace from a placeholder that does not exist, that the
// allow list refuses, or that is empty (a request that arrived outside any
// namespace listener) fails that request with 502, and the error logged
// names the namespace; nothing is dialed in Caddy's own namespace, where
// a decoy listens on the same address.
func TestPlaceholderNamespaceErrorsFailTheRequest(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	nss := nstest.Add(t, 3)
	client, back, refused := nss[0], nss[1], nss[2]
	port := nstest.FreePort(t)
	serveHTTP(t, back, fmt.Sprintf("127.0.0.1:%d", port), back, nil)
	serveHTTP(t, refused, fmt.Sprintf("127.0.0.1:%d", port), refused, nil)
	serveHTTP(t, "", fmt.Sprintf("127.0.0.1:%d", port), "caddy-own-namespace", nil)
	ownPort := nstest.FreePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	admin.MustLoad(t, fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	log {
		output file %[2]s
	}
	netns {
		allow %[3]s %[4]s
	}
}
http://:8080 {
	bind netns/%[3]s/tcp/127.0.0.1
	reverse_proxy netns/{http.request.header.X-Ns}/tcp/127.0.0.1:%[5]d {
		transport netns
	}
}
http://:%[6]d {
	bind 127.0.0.1
	reverse_proxy netns/{http.request.netns.name}/tcp/127.0.0.1:%[5]d {
		transport netns
	}
}
`, adminHost(admin), logFile, client, back, port, ownPort), "caddyfile")

	if got, err := curl(t, client, "-H", "X-Ns: "+back, "http://127.0.0.1:8080/"); got != back+" HTTP/1.1" {
		t.Fatalf("allowed namespace: got %q, %v", got, err)
	}
	missing := nstest.Name("gone")
	for _, ns := range []string{missing, refused, "../" + back} {
		got, err := curl(t, client, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Ns: "+ns, "http://127.0.0.1:8080/")
		if got != "502" {
			t.Errorf("namespace %q: got %q, %v; want 502", ns, got, err)
		}
	}
	c := &http.Client{Timeout: 20 * time.Second}
	res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", ownPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("request outside any namespace listener: %d %q; want 502", res.StatusCode, body)
	}

	var logged string
	for range 50 {
		b, _ := os.ReadFile(logFile)
		logged = string(b)
		if strings.Contains(logged, missing) && strings.Contains(logged, refused) {
			break
		}
		sleep()
	}
	for _, want := range []string{`namespace \"` + missing + `\"`, `namespace \"` + refused + `\"`, "empty namespace"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log has no line with %s", want)
		}
	}
}

// nsClient is an HTTP client whose connections are made from inside ns.
func nsClient(ns, addr string) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return nstest.Dial(ns, network, addr)
		},
	}}
}

func get(c *http.Client, url string) (string, error) {
	res, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %q", res.StatusCode, b)
	}
	return string(b), err
}

// Passive health with the arrival namespace in the upstream address: one
// namespace whose backend is down must not mark the others down. With a
// placeholder in a static upstream Caddy keeps one health record for all
// namespaces, so one tenant's dead backend fails everyone (503); the netns
// dynamic upstream source gives each resolved address its own record.
func TestPassiveHealthPerNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := nstest.Name("nhp") + "-"
	up, down := prefix+"up", prefix+"down"
	nstest.AddNamed(t, up, down)
	serveHTTP(t, up, "127.0.0.1:9000", up, nil) // nothing listens in down
	for _, c := range []struct {
		name, upstream string
		shared         bool
	}{
		{"static placeholder", "reverse_proxy netns/{http.request.netns.name}/tcp/127.0.0.1:9000 {", true},
		{"dynamic netns", "reverse_proxy {\n\t\tdynamic netns netns/{http.request.netns.name}/tcp/127.0.0.1:9000", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			admin.MustLoad(t, fmt.Sprintf(`{
	admin %s
	auto_https off
}
http://:8080 {
	bind netns/%s*/tcp/127.0.0.1
	%s
		fail_duration 30s
		max_fails 1
		transport netns
	}
}
`, adminHost(admin), prefix, c.upstream), "caddyfile")
			if got, _ := curl(t, down, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8080/"); got != "502" {
				t.Fatalf("namespace without a backend: %s, want 502", got)
			}
			got, err := curl(t, up, "http://127.0.0.1:8080/")
			if c.shared {
				// What the dynamic source is for; if Caddy ever keeps
				// health per resolved address, this says so.
				if code, _ := curl(t, up, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8080/"); code != "503" {
					t.Errorf("static placeholder upstream: the other namespace got %s (%q), want 503 from the shared health record", code, got)
				}
				return
			}
			if got != up+" HTTP/1.1" {
				t.Errorf("other namespace after one failure: got %q, %v; want its backend", got, err)
			}
		})
	}
}
