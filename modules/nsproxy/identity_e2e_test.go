package nsproxy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

// A connection arrives in a namespace whose name, meanwhile, was deleted
// and given to a new namespace. The upstream
// netns/{l4.netns.name}/tcp/127.0.0.1:9000 means the namespace the
// connection arrived in: the connection must not be dialed into the new
// namespace of that name; it fails, with a log line that says why.
func TestArrivalNamespaceRecreatedIsNotDialed(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	old := openNS(t, ns) // keeps the first namespace reachable after its name goes
	startBackend(t, ns, "127.0.0.1:9000", "old")
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	admin.MustLoad(t, fmt.Sprintf(`{%s,
		"logging":{"logs":{"default":{"level":"WARN","writer":{"output":"file","filename":%q}}}},
		"apps":{"layer4":{"servers":{"s":%s}}}}`, admin.WithAdmin(), logFile,
		proxyServer([]string{"netns/" + ns + "/tcp/127.0.0.1:8000"},
			`{"handler":"netns_proxy","upstreams":[{"dial":"netns/{l4.netns.name}/tcp/127.0.0.1:9000"}]}`)), "json")

	askOld := func(line string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := nsenter.Dial(ctx, old, "tcp", "127.0.0.1:8000")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return askOn(c, line)
	}
	if got, err := askOld("before"); got != "old: before" {
		t.Fatalf("before the name moved: %q, %v", got, err)
	}

	nstest.Del(ns) // the listener keeps the first namespace alive
	nstest.Batch(t, "netns add "+ns+"\n")
	if err := nstest.LoopbackUp(ns); err != nil {
		t.Fatal(err)
	}
	startBackend(t, ns, "127.0.0.1:9000", "new")
	if nstest.ID(t, ns) == old.ID {
		t.Fatal("the new namespace has the old one's identity")
	}

	got, err := askOld("after")
	if strings.HasPrefix(got, "new:") {
		t.Fatalf("a connection that arrived in the deleted namespace was dialed into the new namespace of the same name: %q", got)
	}
	if err == nil {
		t.Fatalf("answered %q after the name moved; want the connection to fail", got)
	}
	var logged string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(logFile)
		if logged = string(b); strings.Contains(logged, "not dialing into it") {
			return
		}
	}
	t.Errorf("no log line says why the connection failed; log:\n%s", logged)
}

// A reload that names the listener's namespace differently (a bare name,
// then its path under /run/netns) keeps the socket; afterwards the netns
// matcher and {l4.netns.name} follow the new config's spelling, not the
// first config's.
func TestNamespaceSpellingFollowsReload(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	ns := nstest.Add(t, 1)[0]
	startBackend(t, ns, "127.0.0.1:9000", "b")
	id := nstest.ID(t, ns)
	path := "/run/netns/" + ns
	if pid, err := nsenter.StatID(path); err != nil || pid != id {
		t.Fatalf("%s does not name %s (%v): this test needs /var/run to lead to /run", path, ns, err)
	}
	config := func(spelling string) string {
		return fmt.Sprintf(`{%s,"logging":{"logs":{"default":{"level":"WARN"}}},"apps":{"layer4":{"servers":{"s":{
			"listen":["netns/%s/tcp/127.0.0.1:8000"],
			"routes":[{"match":[{"netns":[%q]}],
				"handle":[{"handler":"netns_proxy","upstreams":[{"dial":"netns/{l4.netns.name}/tcp/127.0.0.1:9000"}]}]}]
		}}}}}`, admin.WithAdmin(), spelling, spelling)
	}
	for _, spelling := range []string{ns, path, ns} {
		admin.MustLoad(t, config(spelling), "json")
		var got string
		var err error
		want := "b: " + spelling
		name := ""
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got, err = ask(ns, "tcp", "127.0.0.1:8000", spelling)
			name = nsmatch.Named(id).Name
			if got == want && name == spelling {
				break
			}
		}
		if got != want {
			t.Errorf("config spelling the namespace %q: the netns matcher did not match: %q, %v", spelling, got, err)
		}
		if name != spelling {
			t.Errorf("config spelling the namespace %q: {l4.netns.name} is %q", spelling, name)
		}
	}
}
