package sctpapp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-netns/caddy-netns/modules/sctpapp"
)

// admin drives the Caddy running in this test process through its admin
// API, as netnslistener's e2e harness does (which l4sctp cannot import:
// it is internal to netnslistener).
type admin struct{ url string }

var (
	caddyOnce sync.Once
	caddyURL  string
	caddyErr  error
)

// startCaddy starts Caddy in this process once, with its admin API on a
// free localhost port; each test loads the config it needs, and the
// config is emptied when the test ends.
func startCaddy(t testing.TB) *admin {
	t.Helper()
	caddyOnce.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			caddyErr = err
			return
		}
		caddyURL = "http://" + l.Addr().String()
		l.Close()
		caddyErr = caddy.Load([]byte(fmt.Sprintf(`{"admin":{"listen":%q}}`, strings.TrimPrefix(caddyURL, "http://"))), true)
	})
	if caddyErr != nil {
		t.Fatalf("starting Caddy: %v", caddyErr)
	}
	a := &admin{url: caddyURL}
	t.Cleanup(func() { _ = a.load(`{` + a.adminJSON() + `}`) })
	return a
}

func (a *admin) adminJSON() string {
	return fmt.Sprintf(`"admin":{"listen":%q}`, strings.TrimPrefix(a.url, "http://"))
}

// load posts a JSON config to /load, forced even when unchanged.
func (a *admin) load(config string) error { return a.loadAs(config, "application/json") }

// loadAs posts a config of the given content type (text/caddyfile).
func (a *admin) loadAs(config, contentType string) error {
	// Caddy restarts its admin server on loads: no connection reuse, and a
	// request dropped by the stopping server is sent again.
	var resp *http.Response
	var err error
	for attempt := 1; ; attempt++ {
		var req *http.Request
		req, err = http.NewRequest(http.MethodPost, a.url+"/load", strings.NewReader(config))
		if err != nil {
			return err
		}
		req.Close = true
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Cache-Control", "must-revalidate")
		resp, err = (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err == nil || attempt == 5 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("load: %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("load: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func (a *admin) mustLoad(t testing.TB, config string) {
	t.Helper()
	if err := a.load(config); err != nil {
		t.Fatal(err)
	}
}

// sctpConfig is a config with the admin endpoint and one sctp server
// per entry of servers (name → server JSON), plus extra apps.
func (a *admin) sctpConfig(servers map[string]string, extraApps string) string {
	var parts []string
	for name, s := range servers {
		parts = append(parts, fmt.Sprintf("%q:%s", name, s))
	}
	apps := fmt.Sprintf(`"sctp":{"servers":{%s}}`, strings.Join(parts, ","))
	if extraApps != "" {
		apps += "," + extraApps
	}
	return fmt.Sprintf(`{%s,"apps":{%s}}`, a.adminJSON(), apps)
}

// proxyServer is the JSON of a server that proxies listen to upstreams,
// each upstream with one dial address.
func proxyServer(listen []string, upstreams ...string) string {
	ls, _ := json.Marshal(listen)
	var us []string
	for _, u := range upstreams {
		us = append(us, fmt.Sprintf(`{"dial":[%q]}`, u))
	}
	return fmt.Sprintf(`{"listen":%s,"routes":[{"handle":[{"handler":"proxy","dial_timeout":"20s","upstreams":[%s]}]}]}`,
		ls, strings.Join(us, ","))
}
