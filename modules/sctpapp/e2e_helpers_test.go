package sctpapp_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	_ "github.com/caddy-netns/caddy-netns/modules/sctpapp"
)

// admin is the shared e2e harness's Caddy, running in this test process,
// with the short forms these tests use.
type admin struct{ *e2e.Admin }

// startCaddy starts Caddy in this process once (e2e.Start); each test
// loads the config it needs, and the config is emptied when it ends.
func startCaddy(t testing.TB) *admin { return &admin{e2e.Start(t)} }

func (a *admin) adminJSON() string { return a.WithAdmin() }

// load loads a JSON config, forced even when unchanged.
func (a *admin) load(config string) error { return a.Load(config, "json") }

func (a *admin) mustLoad(t testing.TB, config string) {
	t.Helper()
	a.MustLoad(t, config, "json")
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
