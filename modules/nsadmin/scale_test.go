package nsadmin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4/layer4"
	_ "github.com/mholt/caddy-l4/modules/l4echo"

	_ "github.com/caddy-netns/caddy-netns"
	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsadmin"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func TestMain(m *testing.M) {
	e2e.MaybeRunCaddy()
	os.Exit(m.Run())
}

// get fetches an admin path, sending it again if a reload's admin server
// restart dropped it, and returns the status and body.
func get(t *testing.T, admin *e2e.Admin, path string) (int, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Minute}
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequest(http.MethodGet, admin.URL+path, nil)
		req.Close = true
		resp, err := client.Do(req)
		if err != nil {
			if attempt < 5 {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, body
	}
}

func listing(t *testing.T, admin *e2e.Admin, query string) (nsadmin.Response, int) {
	t.Helper()
	status, body := get(t, admin, "/netns/listeners"+query)
	if status != http.StatusOK {
		t.Fatalf("GET /netns/listeners%s: %d: %s", query, status, body)
	}
	var r nsadmin.Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET /netns/listeners%s: %v\n%.2000s", query, err, body)
	}
	return r, len(body)
}

// scaleConfig is a set echoing over tcp and udp :8000 in every namespace
// named prefix*, with the netns app's metrics settings (JSON; "" for no
// netns app).
func scaleConfig(admin *e2e.Admin, prefix, metrics string) string {
	netns := ""
	if metrics != "" {
		netns = `"netns":{"metrics":` + metrics + `},`
	}
	return fmt.Sprintf(`{%s,"apps":{%s"layer4":{"servers":{"scale":{
		"listen":["netns/%[3]s*/tcp/:8000","netns/%[3]s*/udp/:8000"],
		"routes":[{"handle":[{"handler":"echo"}]}]}}}}}`, admin.WithAdmin(), netns, prefix)
}

// inPool counts the sockets of the pool in namespaces named with prefix.
func inPool(prefix string) int {
	n := 0
	for _, s := range nsnetwork.Sockets() {
		if strings.HasPrefix(s.Namespace, prefix) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool, state ...func() string) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > d {
			for _, f := range state {
				what += " (" + f() + ")"
			}
			t.Fatalf("%s: not after %v", what, d)
		}
	}
}

// raiseOpenFiles makes room for need descriptors in this process, where
// Caddy runs: a set over 10,000 namespaces on tcp and udp holds 20,000
// sockets. Running out would also leave the test unable to unload Caddy
// and delete its namespaces, so it fails up front instead.
func raiseOpenFiles(t *testing.T, need uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= need {
		return
	}
	raised := syscall.Rlimit{Cur: need, Max: max(rl.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		t.Fatalf("%d open files needed, the limit is %d and raising it failed: %v (run as root, or raise ulimit -n)", need, rl.Cur, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) })
}

type sockKey struct{ ns, id, network, address string }

// TestAdminAtScale runs a set over ADMIN_NAMESPACES namespaces (default
// 1500; 10000 for the full size), listening on tcp and udp in each, and
// checks that GET /netns/listeners pages (every socket exactly once
// across the pages, also when namespaces already listed go away during
// the walk; each page bounded), filters by namespace glob and set, and
// that the metrics hold no namespace labels with per_namespace off and no
// more per-namespace series than a cap. It logs how long the listings
// take and what they allocate (not asserted).
//
//	ADMIN_NAMESPACES=10000 go test -count=1 -v -timeout 30m -run TestAdminAtScale ./modules/nsadmin/
func TestAdminAtScale(t *testing.T) {
	nstest.Require(t)
	n := 1500
	if v, err := strconv.Atoi(os.Getenv("ADMIN_NAMESPACES")); err == nil && v > 0 {
		n = v
	}
	const gone = 20 // namespaces deleted during the paged walk
	if n < 200 {
		t.Fatalf("ADMIN_NAMESPACES=%d: want at least 200", n)
	}
	// Two descriptors per member socket today (the pool's file and the
	// listener's duplicate) and room for the rest.
	raiseOpenFiles(t, uint64(4*n+1024))
	prefix := nstest.Name("nadm") + "-"
	names := make([]string, n)
	var add strings.Builder
	for i := range names {
		names[i] = fmt.Sprintf("%s%05d", prefix, i)
		fmt.Fprintf(&add, "netns add %s\n", names[i])
	}
	// Registered before Caddy's, so it runs after Caddy has closed the
	// sockets (and has descriptors free to start ip with).
	t.Cleanup(func() { nstest.Del(names...) })
	admin := e2e.Start(t)
	start := time.Now()
	nstest.Batch(t, add.String())
	t.Logf("%d namespaces created in %v", n, time.Since(start).Round(time.Millisecond))

	admin.MustLoad(t, scaleConfig(admin, prefix, `{}`), "json")
	start = time.Now()
	open := 0
	waitFor(t, "every member socket open", 5*time.Minute, func() bool {
		open = inPool(prefix)
		return open == 2*n
	}, func() string { return fmt.Sprintf("%d of %d open", open, 2*n) })
	t.Logf("%d member sockets open in %v", 2*n, time.Since(start).Round(time.Millisecond))

	key := func(l nsadmin.Listener) sockKey { return sockKey{l.Namespace, l.ID, l.Network, l.Address} }
	tcpSet := "netns/" + prefix + "*/tcp/:8000"
	udpSet := "netns/" + prefix + "*/udp/:8000"

	// The whole listing, as callers without parameters get it.
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	all, allBytes := listing(t, admin, "")
	fullTook := time.Since(t0)
	runtime.ReadMemStats(&ms1)
	fullAlloc := ms1.TotalAlloc - ms0.TotalAlloc
	want := map[sockKey]bool{}
	for _, l := range all.Listeners {
		if strings.HasPrefix(l.Namespace, prefix) {
			want[key(l)] = true
		}
	}
	if len(want) != 2*n || all.Next != "" {
		t.Fatalf("full listing: %d sockets in the set's namespaces, next %q; want %d, none", len(want), all.Next, 2*n)
	}

	// Paged: every socket exactly once, each page bounded. After the
	// first page, the first namespaces (already listed) go away: a
	// cursor is a position, so nothing after it is skipped.
	const limit = 250
	seen := map[sockKey]int{}
	pages, maxBytes, deleted := 0, 0, false
	var pagedTook time.Duration
	runtime.ReadMemStats(&ms0)
	var pageAlloc uint64
	minPageAlloc := ^uint64(0)
	for after := ""; ; {
		q := "?limit=" + strconv.Itoa(limit)
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		t0 := time.Now()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		r, size := listing(t, admin, q)
		var afterMs runtime.MemStats
		runtime.ReadMemStats(&afterMs)
		pageAlloc = max(pageAlloc, afterMs.TotalAlloc-before.TotalAlloc)
		minPageAlloc = min(minPageAlloc, afterMs.TotalAlloc-before.TotalAlloc)
		pagedTook += time.Since(t0)
		pages++
		maxBytes = max(maxBytes, size)
		if got := len(r.Listeners) + len(r.Waiting); got > limit {
			t.Fatalf("page %d: %d entries, limit %d", pages, got, limit)
		}
		if r.Next != "" && len(r.Listeners)+len(r.Waiting) != limit {
			t.Errorf("page %d: %d entries and a next cursor; want full pages before the last", pages, len(r.Listeners)+len(r.Waiting))
		}
		for _, l := range r.Listeners {
			seen[key(l)]++
		}
		if !deleted {
			deleted = true
			for _, l := range r.Listeners[:2*gone] {
				if !slices.Contains(names[:gone], l.Namespace) {
					t.Fatalf("first page does not start with the first namespaces: %s", l.Namespace)
				}
			}
			var del strings.Builder
			for _, ns := range names[:gone] {
				fmt.Fprintf(&del, "netns del %s\n", ns)
			}
			nstest.Batch(t, del.String())
			waitFor(t, "deleted namespaces leave the pool", 2*time.Minute, func() bool { return inPool(prefix) == 2*(n-gone) })
		}
		if r.Next == "" {
			break
		}
		after = r.Next
		if pages > 4*n/limit+10 {
			t.Fatalf("%d pages and still a next cursor", pages)
		}
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("socket %v listed %d times across the pages, want once", k, seen[k])
		}
	}
	for k, c := range seen {
		if !want[k] {
			t.Errorf("socket %v listed %d times, not in the full listing", k, c)
		}
	}
	// A page's body is bounded by the limit, not by the listing's size.
	if perEntry := allBytes / len(all.Listeners); maxBytes > 2*limit*perEntry+1024 {
		t.Errorf("largest page %d bytes for %d entries; the full listing is %d bytes for %d", maxBytes, limit, allBytes, len(all.Listeners))
	}
	live := n - gone

	// Filters.
	r, _ := listing(t, admin, "?netns="+url.QueryEscape(prefix+"0010*"))
	if len(r.Listeners) != 2*10 || r.Next != "" {
		t.Errorf("netns=%s0010*: %d listeners, want %d", prefix, len(r.Listeners), 2*10)
	}
	for _, l := range r.Listeners {
		if !strings.HasPrefix(l.Namespace, prefix+"0010") {
			t.Errorf("netns=%s0010*: listed %s", prefix, l.Namespace)
		}
	}
	r, _ = listing(t, admin, "?set="+url.QueryEscape(udpSet))
	if len(r.Listeners) != live {
		t.Errorf("set=%s: %d listeners, want %d", udpSet, len(r.Listeners), live)
	}
	for _, l := range r.Listeners {
		if l.Network != "udp" || !slices.Contains(l.Sets, udpSet) {
			t.Errorf("set=%s: listed %+v", udpSet, l)
		}
	}
	// Filters and pages together.
	total := 0
	for after := ""; ; {
		q := "?limit=97&set=" + url.QueryEscape(tcpSet)
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		r, _ := listing(t, admin, q)
		for _, l := range r.Listeners {
			if l.Network != "tcp" {
				t.Fatalf("set=%s: listed %+v", tcpSet, l)
			}
		}
		total += len(r.Listeners)
		if after = r.Next; after == "" {
			break
		}
	}
	if total != live {
		t.Errorf("set=%s in pages of 97: %d listeners, want %d", tcpSet, total, live)
	}
	// Kernel counts for one page only.
	t0 = time.Now()
	r, _ = listing(t, admin, "?connections=kernel&limit=50&set="+url.QueryEscape(tcpSet))
	kernelTook := time.Since(t0)
	for _, l := range r.Listeners {
		if l.OpenConnections == nil || *l.OpenConnections != 0 {
			t.Errorf("kernel count for %s: %v, want 0", l.Namespace, l.OpenConnections)
		}
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?limit=10001", "?after=zz!", "?netns=[", "?nets=a", "?limit=1&limit=2"} {
		if status, body := get(t, admin, "/netns/listeners"+bad); status != http.StatusBadRequest {
			t.Errorf("GET /netns/listeners%s: %d %s, want 400", bad, status, body)
		}
	}

	// Metrics: every per-namespace series by default; none with
	// per_namespace off; at most the cap with one.
	t0 = time.Now()
	perNS, body := scrape(t, admin)
	scrapeTook := time.Since(t0)
	defaultBytes := len(body)
	if perNS != 10*live { // 4 per tcp member, 6 per udp member
		t.Errorf("per-namespace series by default: %d, want %d", perNS, 10*live)
	}
	for _, s := range []string{
		fmt.Sprintf(`caddy_netns_sockets{address=":8000",network="tcp"} %d`, live),
		fmt.Sprintf(`caddy_netns_sockets{address=":8000",network="udp"} %d`, live),
		fmt.Sprintf(`caddy_netns_set_members{set=%q} %d`, tcpSet, live),
		`caddy_netns_listeners_omitted 0`,
	} {
		if !strings.Contains(body, s+"\n") {
			t.Errorf("/metrics lacks %s", s)
		}
	}
	since := all.Listeners[len(all.Listeners)-1].Since
	admin.MustLoad(t, scaleConfig(admin, prefix, `{"per_namespace":false}`), "json")
	t0 = time.Now()
	perNS, body = scrape(t, admin)
	scrapeOffTook, offBytes := time.Since(t0), len(body)
	if perNS != 0 {
		t.Errorf("per_namespace off: %d series with a netns label", perNS)
	}
	for _, s := range []string{
		fmt.Sprintf(`caddy_netns_sockets{address=":8000",network="udp"} %d`, live),
		`caddy_netns_address_connections_accepted_total{address=":8000",network="tcp"} 0`,
		`caddy_netns_address_packets_total{address=":8000",direction="in",network="udp"} 0`,
		fmt.Sprintf(`caddy_netns_listeners_omitted %d`, 2*live),
	} {
		if !strings.Contains(body, s+"\n") {
			t.Errorf("per_namespace off: /metrics lacks %s", s)
		}
	}
	const capSeries = 1000
	admin.MustLoad(t, scaleConfig(admin, prefix, fmt.Sprintf(`{"max_namespace_series":%d}`, capSeries)), "json")
	perNS, body = scrape(t, admin)
	if perNS > capSeries || perNS < capSeries-6 {
		t.Errorf("cap %d: %d series with a netns label, want %d-%d", capSeries, perNS, capSeries-6, capSeries)
	}
	if !strings.Contains(body, "caddy_netns_listeners_omitted ") || strings.Contains(body, "caddy_netns_listeners_omitted 0\n") {
		t.Errorf("cap %d: caddy_netns_listeners_omitted missing or 0", capSeries)
	}
	// The reloads changed no namespace: no socket was re-created.
	r, _ = listing(t, admin, "?netns="+url.QueryEscape(all.Listeners[len(all.Listeners)-1].Namespace))
	if len(r.Listeners) == 0 || !r.Listeners[len(r.Listeners)-1].Since.Equal(since) {
		t.Errorf("socket re-created by a metrics-only reload: %+v, since %v before", r.Listeners, since)
	}

	// The allow list still decides per member at this size: narrowed to
	// ten namespaces, the set keeps exactly their sockets, and the
	// listing and metrics follow.
	allowed := prefix + "0010*"
	admin.MustLoad(t, fmt.Sprintf(`{%s,"apps":{"netns":{"allow":[%q]},"layer4":{"servers":{"scale":{
		"listen":["netns/%[3]s*/tcp/:8000","netns/%[3]s*/udp/:8000"],
		"routes":[{"handle":[{"handler":"echo"}]}]}}}}}`, admin.WithAdmin(), allowed, prefix), "json")
	waitFor(t, "members outside the allow list closed", 2*time.Minute, func() bool { return inPool(prefix) == 2*10 })
	r, _ = listing(t, admin, "?limit=7&set="+url.QueryEscape(udpSet))
	pagesLeft, udpMembers := 10, len(r.Listeners)
	for r.Next != "" && pagesLeft > 0 {
		r, _ = listing(t, admin, "?limit=7&set="+url.QueryEscape(udpSet)+"&after="+url.QueryEscape(r.Next))
		udpMembers += len(r.Listeners)
		pagesLeft--
	}
	if udpMembers != 10 {
		t.Errorf("udp members under allow %s: %d, want 10", allowed, udpMembers)
	}
	if perNS, body := scrape(t, admin); perNS != 10*10 ||
		!strings.Contains(body, fmt.Sprintf("caddy_netns_set_members{set=%q} 10\n", udpSet)) {
		t.Errorf("metrics under allow %s: %d per-namespace series (want 100), set members line present: %v",
			allowed, perNS, strings.Contains(body, fmt.Sprintf("caddy_netns_set_members{set=%q} 10\n", udpSet)))
	}

	t.Logf("admin-scale: %d namespaces, %d sockets (tcp+udp), GOMAXPROCS %d", n, 2*n, runtime.GOMAXPROCS(0))
	t.Logf("admin-scale:   %-46s %v, %d bytes, %.1f MiB allocated (server and client, process-wide)", "GET /netns/listeners (everything)", fullTook.Round(time.Millisecond), allBytes, float64(fullAlloc)/(1<<20))
	t.Logf("admin-scale:   %-46s %v for %d pages of %d, largest %d bytes, %.1f-%.1f MiB allocated per page (process-wide)", "GET /netns/listeners?limit=250 (walk)", pagedTook.Round(time.Millisecond), pages, limit, maxBytes, float64(minPageAlloc)/(1<<20), float64(pageAlloc)/(1<<20))
	t.Logf("admin-scale:   %-46s %v", "GET ...?connections=kernel&limit=50&set=...", kernelTook.Round(time.Millisecond))
	t.Logf("admin-scale:   %-46s %v, %d bytes, %d per-namespace series", "GET /metrics (per_namespace on)", scrapeTook.Round(time.Millisecond), defaultBytes, 10*live)
	t.Logf("admin-scale:   %-46s %v, %d bytes", "GET /metrics (per_namespace off)", scrapeOffTook.Round(time.Millisecond), offBytes)
}

// scrape returns how many caddy_netns_* series /metrics has with a netns
// label, and the body.
func scrape(t *testing.T, admin *e2e.Admin) (int, string) {
	t.Helper()
	status, b := get(t, admin, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d: %.500s", status, b)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "caddy_netns_") && strings.Contains(line, `netns="`) {
			n++
		}
	}
	return n, string(b)
}

// A config with bad metrics settings is refused with an error naming the
// field and value, and the running config keeps serving: its sockets stay
// and the admin API still answers. (The admin module loads the netns app
// while the admin endpoint is provisioned, before the other apps.)
func TestBadMetricsSettingsRefused(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := nstest.Name("nadb") + "-"
	names := []string{prefix + "a", prefix + "b"}
	t.Cleanup(func() { nstest.Del(names...) })
	nstest.Batch(t, "netns add "+names[0]+"\nnetns add "+names[1]+"\n")
	admin.MustLoad(t, scaleConfig(admin, prefix, `{"max_namespace_series":100}`), "json")
	before, _ := listing(t, admin, "")
	if len(before.Listeners) != 4 {
		t.Fatalf("listeners: %+v", before.Listeners)
	}
	err := admin.Load(scaleConfig(admin, prefix, `{"max_namespace_series":-1}`), "json")
	if err == nil || !strings.Contains(err.Error(), "netns metrics max_namespace_series -1: want 0 (no cap) or more") {
		t.Fatalf("load with a negative cap: %v", err)
	}
	after, _ := listing(t, admin, "")
	if len(after.Listeners) != 4 {
		t.Fatalf("after the refused load: %+v", after.Listeners)
	}
	for i := range after.Listeners {
		if !after.Listeners[i].Since.Equal(before.Listeners[i].Since) {
			t.Errorf("socket re-created by a refused load: %+v", after.Listeners[i])
		}
	}
	if perNS, _ := scrape(t, admin); perNS != 4*2+6*2 {
		t.Errorf("per-namespace series after the refused load: %d, want %d", perNS, 4*2+6*2)
	}
}
