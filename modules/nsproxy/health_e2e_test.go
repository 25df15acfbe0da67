package nsproxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// tenantListens returns the listen addresses of the two tenants' server:
// one set over both namespaces, or one plain address each.
func tenantListens(kind, prefix string, nss ...string) []string {
	if kind == "set" {
		return []string{"netns/" + prefix + "*/tcp/127.0.0.1:8000"}
	}
	var out []string
	for _, ns := range nss {
		out = append(out, "netns/"+ns+"/tcp/127.0.0.1:8000")
	}
	return out
}

// reachesProxy waits (up to 10s) until a TCP connection in ns to the
// listener is accepted, and reports whether it was then answered.
func reachesProxy(t *testing.T, ns string) (answer string, answered bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := dialIn(ns, "tcp", "127.0.0.1:8000")
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("listener in %s never accepted: %v", ns, err)
			}
			continue
		}
		got, err := askOn(c, "hc")
		c.Close()
		return got, err == nil
	}
}

// Two tenants share one server and one placeholder upstream,
// netns/{l4.netns.name}/tcp/127.0.0.1:9000, with passive health checks that
// mark an upstream down after one failure for 30s. Only the second tenant
// has a backend. Each connection of the first tenant fails; the second
// tenant's connections, each right after one of those failures, must all be
// answered: health state belongs to the resolved target, not to the
// template.
func TestCrossTenantHealth(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	for _, kind := range []string{"set", "plain"} {
		t.Run(kind, func(t *testing.T) {
			prefix := nstest.Name("nph") + "-"
			bad, good := prefix+"a", prefix+"b"
			nstest.AddNamed(t, bad, good)
			startBackend(t, good, "127.0.0.1:9000", "good")
			admin.MustLoad(t, layer4JSON(admin, map[string]string{
				"tenants": proxyServer(tenantListens(kind, prefix, bad, good), `{"handler":"netns_proxy",
					"health_checks":{"passive":{"fail_duration":30000000000,"max_fails":1}},
					"upstreams":[{"dial":"netns/{l4.netns.name}/tcp/127.0.0.1:9000"}]}`),
			}), "json")
			waitAnswer(t, good, "good")

			const n = 20
			failed, badAnswered := 0, 0
			for i := range n {
				if _, ok := reachesProxy(t, bad); ok {
					badAnswered++
				}
				line := fmt.Sprintf("after failure %d", i)
				if got, err := ask(good, "tcp", "127.0.0.1:8000", line); got != "good: "+line {
					failed++
					t.Logf("tenant with a backend, connection %d: %q, %v", i, got, err)
				}
			}
			nstest.Summary(t, "cross-tenant health ("+kind+")", "connections", n, failed)
			if failed > 0 {
				t.Errorf("%d of %d connections of the tenant with a backend failed after the other tenant's failures", failed, n)
			}
			if badAnswered > 0 {
				t.Errorf("%d connections of the tenant without a backend were answered", badAnswered)
			}
		})
	}
}

// Active health checks with a placeholder upstream run per resolved target
// that connections have reached: the tenant whose health port is closed is
// marked down (its data port still answers), and stays down across a
// reload; the other tenant stays up;
// when the healthy tenant's health port closes it goes down too, and comes
// back when it opens again.
func TestCrossTenantActiveHealth(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := nstest.Name("nph") + "-"
	bad, good := prefix+"a", prefix+"b"
	nstest.AddNamed(t, bad, good)
	startBackend(t, bad, "127.0.0.1:9000", "bad")
	startBackend(t, good, "127.0.0.1:9000", "good")
	health := startBackend(t, good, "127.0.0.1:9100", "health")
	config := layer4JSON(admin, map[string]string{
		"tenants": proxyServer(tenantListens("set", prefix), `{"handler":"netns_proxy",
			"health_checks":{"active":{"port":9100,"interval":100000000,"timeout":500000000}},
			"upstreams":[{"dial":"netns/{l4.netns.name}/tcp/127.0.0.1:9000"}]}`),
	})
	admin.MustLoad(t, config, "json")
	waitAnswer(t, good, "good")

	// The first connection of the tenant without a health port makes its
	// target known; the checks then mark it down.
	down := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, ok := reachesProxy(t, bad); !ok {
			down = true
			break
		}
	}
	if !down {
		t.Fatal("the tenant whose health port is closed was never marked down: placeholder upstreams are not checked")
	}
	// A reload keeps what the checks found.
	admin.MustLoad(t, config, "json")
	if got, ok := reachesProxy(t, bad); ok {
		t.Errorf("right after a reload the tenant marked down was answered: %q", got)
	}

	const n = 20
	failed := 0
	for i := range n {
		line := fmt.Sprintf("active %d", i)
		if got, err := ask(good, "tcp", "127.0.0.1:8000", line); got != "good: "+line {
			failed++
			t.Logf("tenant with a healthy backend, connection %d: %q, %v", i, got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	nstest.Summary(t, "cross-tenant active health", "connections", n, failed)
	if failed > 0 {
		t.Errorf("%d of %d connections of the healthy tenant failed", failed, n)
	}

	health.Stop()
	waitRefused(t, good)
	startBackend(t, good, "127.0.0.1:9100", "health")
	waitAnswer(t, good, "good")
}

// waitRefused waits (up to 10s) until a TCP connection in ns is accepted by
// the proxy but not answered.
func waitRefused(t *testing.T, ns string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, ok := reachesProxy(t, ns); !ok {
			return
		}
	}
	t.Fatalf("connections in %s were still answered", ns)
}
