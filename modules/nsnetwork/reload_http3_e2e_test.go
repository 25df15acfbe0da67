package nsnetwork_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// HTTP/3 keeps answering across forced reloads of an unchanged config, on
// a plain netns listener and on a set: Caddy keeps one QUIC listener per
// address for every config that names it, so the UDP socket under it must
// live as long as that listener, not as long as the config that opened it.
// After every reload each namespace gets HTTP/3 requests over new QUIC
// connections (and one HTTP/2 request); every one must be answered.
func TestHTTP3AcrossReloads(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	reloads := envInt("RELIABILITY_H3_RELOADS", 20)
	const perReload = 2
	plain := nstest.Add(t, 1)[0]
	prefix := setPrefix()
	members := []string{prefix + "a", prefix + "b"}
	addNamed(t, members...)
	cfg := httpsConfig(t, admin, "netns/"+plain+"/tcp/127.0.0.1", "netns/"+prefix+"*/tcp/127.0.0.1")
	admin.MustLoad(t, cfg, "caddyfile")

	type target struct{ kind, ns, addr string }
	kinds := []string{"plain netns listener", fmt.Sprintf("namespace set (%d members)", len(members))}
	targets := []target{{kinds[0], plain, "127.0.0.1:8443"}}
	for _, ns := range members {
		targets = append(targets, target{kinds[1], ns, "127.0.0.1:8444"})
	}
	for _, tg := range targets {
		expectHTTP2AndHTTP3(t, tg.ns, tg.addr) // also waits for the certificate
	}

	tried, lost := map[string]int{}, map[string]int{}
	var h2Lost, loadFail int
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	for i := 0; i < reloads && lost[kinds[0]]+lost[kinds[1]] < 6; i++ {
		if err := admin.Load(cfg, "caddyfile"); err != nil {
			loadFail++
			note(err)
		}
		for _, tg := range targets {
			url := siteURL(t, tg.addr)
			for j := range perReload {
				tried[tg.kind]++
				if err := get(tg.ns, tg.addr, url, "hello over HTTP/3.0"); err != nil {
					lost[tg.kind]++
					note(fmt.Errorf("reload %d, h3 request %d in %s: %w", i+1, j, tg.ns, err))
				}
			}
			h2 := http2Client(tg.ns, tg.addr)
			if body, err := getBody(h2, url); err != nil || body != "hello over HTTP/2.0" {
				h2Lost++
				note(fmt.Errorf("reload %d, h2 in %s: %q, %v", i+1, tg.ns, body, err))
			}
			h2.CloseIdleConnections()
		}
	}
	for _, k := range kinds {
		nstest.Summary(t, fmt.Sprintf("h3 requests lost across %d reloads", reloads), k+", requests", tried[k], lost[k])
	}
	if n := lost[kinds[0]] + lost[kinds[1]]; n > 0 || h2Lost > 0 || loadFail > 0 {
		t.Fatalf("%d HTTP/3 requests lost, %d HTTP/2 requests lost, %d loads failed; first: %v", n, h2Lost, loadFail, first)
	}

	// The QUIC sockets close with the last config that uses them, once
	// its servers have shut down (Caddy does not wait for that).
	admin.MustLoad(t, fmt.Sprintf(`{%s}`, admin.WithAdmin()), "json")
	waitNoSockets(t, func(s nsnetwork.Socket) bool {
		return s.Namespace == plain || strings.HasPrefix(s.Namespace, prefix)
	})
}

// waitNoSockets waits up to 15 s until no socket of the pool matches, and
// fails the test if one still does.
func waitNoSockets(t *testing.T, match func(nsnetwork.Socket) bool) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = left[:0]
		for _, s := range nsnetwork.Sockets() {
			if match(s) {
				left = append(left, s.Network+" "+s.Address+" in "+s.Namespace)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("sockets still open after their config was unloaded: %v", left)
	}
}

// get asks url over HTTP/3, on a new QUIC connection from inside ns.
func get(ns, addr, url, want string) error {
	c, done, err := http3Client(ns, addr)
	if err != nil {
		return err
	}
	defer done()
	body, err := getBody(c, url)
	if err != nil {
		return err
	}
	if body != want {
		return fmt.Errorf("got %q, want %q", body, want)
	}
	return nil
}

// getBody GETs url once and returns the body.
func getBody(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A config whose http app fails half-way through starting, after it opened
// the HTTP/3 socket of its first address, leaks no socket (Caddy stops the
// app, which lets go of its QUIC listener) and changes nothing for the next
// config, which serves HTTP/3 on that address.
func TestHTTP3AfterFailedStart(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	admin.MustLoad(t, httpsConfig(t, admin, "netns/"+ns+"/tcp/127.0.0.1"), "caddyfile")
	good := admin.Config(t)
	expectHTTP2AndHTTP3(t, ns, "127.0.0.1:8443")

	// The same server with a second address whose port is taken: the
	// http app opens 8443 (TCP and QUIC), then fails on 8445.
	taken := nstest.Listen(t, ns, "tcp", "127.0.0.1:8445")
	defer taken.Close()
	var cfg map[string]any
	if err := json.Unmarshal([]byte(good), &cfg); err != nil {
		t.Fatal(err)
	}
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	if len(servers) != 1 {
		t.Fatalf("want one server in %s", good)
	}
	for _, s := range servers {
		srv := s.(map[string]any)
		srv["listen"] = append(srv["listen"].([]any), "netns/"+ns+"/tcp/127.0.0.1:8445")
	}
	bad, _ := json.Marshal(cfg)

	// Start from no QUIC listener at all, so that the failing config is
	// the one that opens it.
	admin.MustLoad(t, fmt.Sprintf(`{%s}`, admin.WithAdmin()), "json")
	waitNoSockets(t, func(s nsnetwork.Socket) bool { return s.Namespace == ns })
	if err := admin.Load(string(bad), "json"); err == nil || !strings.Contains(err.Error(), "8445") {
		t.Fatalf("config with a taken port: %v", err)
	}
	waitNoSockets(t, func(s nsnetwork.Socket) bool { return s.Namespace == ns })
	admin.MustLoad(t, good, "json")
	expectHTTP2AndHTTP3(t, ns, "127.0.0.1:8443")
}
