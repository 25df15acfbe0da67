package nsnetwork_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsadmin"
)

func getListeners(t *testing.T, admin *e2e.Admin, query string) nsadmin.Response {
	t.Helper()
	resp, err := http.Get(admin.URL + "/netns/listeners" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /netns/listeners: %s: %s", resp.Status, body)
	}
	var r nsadmin.Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET /netns/listeners: %v\n%s", err, body)
	}
	return r
}

// The admin API lists each live namespace listener (name, inode, network,
// address, since, open connections, set counters) and the namespaces a set
// still waits for; /metrics has the per-namespace series.
func TestSetAdminEndpointAndMetrics(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	a, taken := prefix+"a", prefix+"taken"
	addNamed(t, a, taken)
	startNSBackend(t, a, "127.0.0.1:9000", a)
	startNSBackend(t, taken, "127.0.0.1:8000", "blocker")
	before := time.Now()
	admin.MustLoad(t, setConfig(admin, "set", prefix+"*", "127.0.0.1:8000"), "json")

	held, err := dialIn(a, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got, err := askOn(held, "hi"); got != a+": hi" {
		t.Fatalf("held connection: %q, %v", got, err)
	}
	expectAnswer(t, a, "udp", "127.0.0.1:8000", a)

	id := nstest.ID(t, a)
	for _, l := range getListeners(t, admin, "?connections=kernel").Listeners {
		if l.Namespace == a && l.Network == "tcp" && (l.OpenConnections == nil || *l.OpenConnections != 1) {
			t.Errorf("kernel count of open connections: %v, want 1", l.OpenConnections)
		}
	}
	r := getListeners(t, admin, "")
	set := map[string]string{
		"tcp": "netns/" + prefix + "*/tcp/127.0.0.1:8000",
		"udp": "netns/" + prefix + "*/udp/127.0.0.1:8000",
	}
	seen := map[string]bool{}
	for _, l := range r.Listeners {
		if l.Namespace == taken {
			t.Errorf("listener in %s, where the port is taken: %+v", taken, l)
		}
		if l.Namespace != a {
			continue
		}
		seen[l.Network] = true
		if l.Inode != id.Ino || l.ID != id.String() || l.Address != "127.0.0.1:8000" ||
			l.Since.Before(before.Add(-time.Second)) || !slices.Contains(l.Sets, set[l.Network]) {
			t.Errorf("listener: %+v", l)
		}
		switch l.Network {
		case "tcp":
			// The held connection (the proxy's upstream connection is
			// to another port).
			if l.OpenConnections == nil || *l.OpenConnections != 1 || l.Accepted < 1 {
				t.Errorf("tcp listener: open %v, accepted %d; want 1, >= 1", l.OpenConnections, l.Accepted)
			}
		case "udp":
			if l.OpenConnections != nil || l.PacketsIn < 1 || l.PacketsOut < 1 || l.BytesIn == 0 || l.BytesOut == 0 {
				t.Errorf("udp listener counters: %+v", l)
			}
		}
	}
	if !seen["tcp"] || !seen["udp"] {
		t.Errorf("listeners in %s: %v\n%+v", a, seen, r.Listeners)
	}
	waits := 0
	for _, w := range r.Waiting {
		if w.Namespace == taken {
			waits++
			if !strings.Contains(w.Error, "address already in use") {
				t.Errorf("waiting: %+v", w)
			}
		}
	}
	if waits != 2 {
		t.Errorf("want %s waiting for tcp and udp: %+v", taken, r.Waiting)
	}

	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`caddy_netns_connections_accepted_total{address="127.0.0.1:8000",netns="` + a + `"`,
		`caddy_netns_connections_open{address="127.0.0.1:8000",netns="` + a + `"`,
		`caddy_netns_packets_total{address="127.0.0.1:8000",direction="in",netns="` + a + `"`,
		`caddy_netns_bytes_total{address="127.0.0.1:8000",direction="out",netns="` + a + `"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(string(body), "\n") {
			if strings.Contains(line, "caddy_netns") {
				t.Log(line)
			}
		}
	}
}
