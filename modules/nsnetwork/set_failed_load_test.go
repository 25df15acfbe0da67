package nsnetwork_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// A failed load changes nothing, for sets too: a config with a narrower
// allow list that fails at any stage after the netns app is provisioned
// (another listen address of the same server, another layer4 server, the
// http app at start, another app's provision, the config loader after
// every app has started) leaves the member the narrower list would refuse
// listening on the very same sockets, and a connection held through it
// working. Stages whose order depends on Caddy's map iteration are tried
// several times.
func TestFailedLoadKeepsSetMembers(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	a, b := prefix+"a", prefix+"b"
	addNamed(t, a, b)
	startNSBackend(t, a, "127.0.0.1:9000", a)
	startNSBackend(t, b, "127.0.0.1:9000", b)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenAddr := taken.Addr().String()

	open := setConfig(admin, "set", prefix+"*", "127.0.0.1:8000")
	admin.MustLoad(t, open, "json")
	eventually(t, 5*time.Second, b+" answers", func() bool { return answers(b, "tcp", "127.0.0.1:8000") })
	idB := nstest.ID(t, b)
	held, err := dialIn(b, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got, err := askOn(held, "held"); err != nil || got != b+": held" {
		t.Fatalf("held connection: %q %v", got, err)
	}

	// narrow returns the set's config with the allow list [a] and edit
	// applied to its decoded JSON.
	narrow := func(edit func(cfg map[string]any, apps map[string]any, l4 map[string]any)) string {
		var cfg map[string]any
		if err := json.Unmarshal([]byte(open), &cfg); err != nil {
			t.Fatal(err)
		}
		apps := cfg["apps"].(map[string]any)
		apps["netns"] = map[string]any{"allow": []string{a}}
		edit(cfg, apps, apps["layer4"].(map[string]any)["servers"].(map[string]any))
		out, _ := json.Marshal(cfg)
		return string(out)
	}
	httpOn := func(listen string, handler map[string]any) map[string]any {
		return map[string]any{"servers": map[string]any{"h": map[string]any{
			"listen": []string{listen}, "routes": []any{map[string]any{"handle": []any{handler}}},
		}}}
	}
	static := map[string]any{"handler": "static_response", "body": "x"}
	stages := []struct {
		name   string
		tries  int
		config string
	}{
		{"another listen address of the same server", 1, narrow(func(_, _, l4 map[string]any) {
			s := l4["set"].(map[string]any)
			s["listen"] = append(s["listen"].([]any), "tcp/"+takenAddr)
		})},
		{"another layer4 server", 6, narrow(func(_, _, l4 map[string]any) {
			l4["bad"] = map[string]any{"listen": []string{"tcp/" + takenAddr},
				"routes": []any{map[string]any{"handle": []any{map[string]any{"handler": "echo"}}}}}
		})},
		{"http app at start", 6, narrow(func(_, apps, _ map[string]any) {
			apps["http"] = httpOn(takenAddr, static)
		})},
		{"another app's provision", 1, narrow(func(_, apps, _ map[string]any) {
			apps["http"] = httpOn("127.0.0.1:0", map[string]any{"handler": "no_such_handler"})
		})},
		{"config loader after every app started", 1, narrow(func(cfg, _, _ map[string]any) {
			cfg["admin"].(map[string]any)["config"] = map[string]any{"load": map[string]any{"module": "no_such_loader"}}
		})},
	}
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			// Each stage on its own: an earlier one that failed may
			// have re-opened the sockets.
			eventually(t, 5*time.Second, b+" answers", func() bool { return answers(b, "tcp", "127.0.0.1:8000") })
			sinceTCP := socketSince(t, idB, "tcp", "127.0.0.1:8000")
			sinceUDP := socketSince(t, idB, "udp", "127.0.0.1:8000")
			for range st.tries {
				err := admin.Load(st.config, "json")
				if err == nil {
					t.Fatal("the load succeeded; the test is broken")
				}
				t.Logf("load failed as meant: %v", err)
				// The set's run loop acts on a config change in the
				// background: give it time to do the wrong thing.
				time.Sleep(300 * time.Millisecond)
				if !poolHas(idB, "tcp", "127.0.0.1:8000") || !poolHas(idB, "udp", "127.0.0.1:8000") {
					t.Fatalf("the member in %s was closed by a failed load", b)
				}
				if !socketSince(t, idB, "tcp", "127.0.0.1:8000").Equal(sinceTCP) || !socketSince(t, idB, "udp", "127.0.0.1:8000").Equal(sinceUDP) {
					t.Fatalf("the member in %s was closed and re-opened by a failed load", b)
				}
				if got, err := askOn(held, "held"); err != nil || got != b+": held" {
					t.Fatalf("held connection after the failed load: %q %v", got, err)
				}
				expectAnswer(t, b, "tcp", "127.0.0.1:8000", b)
				if !strings.Contains(admin.Config(t), prefix+"*") {
					t.Fatal("the running config changed")
				}
			}
		})
	}

	// The narrowing itself still applies once a load succeeds.
	admin.MustLoad(t, narrow(func(_, _, _ map[string]any) {}), "json")
	eventually(t, 5*time.Second, b+" closed under the narrower allow list", func() bool {
		return !poolHas(idB, "tcp", "127.0.0.1:8000")
	})
}
