package nsnetwork_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

// While two configs hold a set (a reload: Caddy starts the new config
// before it stops the old), a connection or datagram goes to a config
// whose allow list admits the member it came in on. Here the new config
// admits only a; its layer4 server serves the set, then waits on a listen
// address whose name a slow DNS server resolves (a second and more), and
// the load finally fails at its very end. Meanwhile clients in b keep
// asking. Every one must be answered, and none by the new config's route
// (its upstream port 9001 answers "new-b"; a connection it gets in b
// mostly fails, since its allow list refuses the upstream in b too).
func TestSetReloadRoutesByAllowList(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	a, b := prefix+"a", prefix+"b"
	addNamed(t, a, b)
	for _, ns := range []string{a, b} {
		startNSBackend(t, ns, "127.0.0.1:9000", ns)
		startNSBackend(t, ns, "127.0.0.1:9001", "new-"+ns)
	}
	old := setConfig(admin, "set", prefix+"*", "127.0.0.1:8000")
	admin.MustLoad(t, old, "json")
	for _, network := range []string{"tcp", "udp"} {
		eventually(t, 5*time.Second, b+" answers over "+network, func() bool { return answers(b, network, "127.0.0.1:8000") })
	}

	var cfg map[string]any
	if err := json.Unmarshal([]byte(old), &cfg); err != nil {
		t.Fatal(err)
	}
	apps := cfg["apps"].(map[string]any)
	apps["netns"] = map[string]any{"allow": []string{a}}
	route := apps["layer4"].(map[string]any)["servers"].(map[string]any)["set"].(map[string]any)["routes"].([]any)[0].(map[string]any)
	route["handle"].([]any)[0].(map[string]any)["upstreams"] = []any{map[string]any{"dial": "netns/{l4.netns.name}/{l4.netns.network}/127.0.0.1:9001"}}
	srv := apps["layer4"].(map[string]any)["servers"].(map[string]any)["set"].(map[string]any)
	srv["listen"] = append(srv["listen"].([]any), "netns/"+a+"/tcp/slow.caddy-netns.invalid:8100")
	cfg["admin"].(map[string]any)["config"] = map[string]any{"load": map[string]any{"module": "no_such_loader"}}
	failing, _ := json.Marshal(cfg)

	dns := startSlowDNS(t)
	release := sync.OnceFunc(func() { close(dns.release) })
	defer release()
	saved := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.pc.LocalAddr().String())
	}}
	t.Cleanup(func() { net.DefaultResolver = saved })

	var (
		stop                         atomic.Bool
		asked, misrouted, failedAsks atomic.Int64
		firstBad, firstErr           atomic.Value
		wg                           sync.WaitGroup
	)
	for i := range 8 {
		network := []string{"tcp", "udp"}[i%2]
		wg.Go(func() {
			for !stop.Load() {
				got, err := ask(b, network, "127.0.0.1:8000", "ping")
				asked.Add(1)
				switch {
				case err != nil:
					failedAsks.Add(1)
					firstErr.CompareAndSwap(nil, network+": "+err.Error())
				case strings.HasPrefix(got, "new-"):
					misrouted.Add(1)
					firstBad.CompareAndSwap(nil, network+": "+got)
				}
			}
		})
	}
	loaded := make(chan error, 1)
	go func() { loaded <- admin.Load(string(failing), "json") }()
	select {
	case <-dns.asked: // the new config serves the set now
	case err := <-loaded:
		t.Fatalf("the load ended before it asked the DNS server: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the DNS server was never asked")
	}
	time.Sleep(1500 * time.Millisecond)
	release()
	if err := <-loaded; err == nil {
		t.Fatal("the load succeeded; the test is broken")
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d asks in %s while two configs held the set, %d failed, %d answered by the config that does not admit %s",
		asked.Load(), b, failedAsks.Load(), misrouted.Load(), b)
	nstest.Summary(t, "set during a reload, to a config whose allow list admits the member", "asks", int(asked.Load()), int(misrouted.Load()+failedAsks.Load()))
	if n := misrouted.Load(); n > 0 {
		t.Errorf("%d of %d answers in %s came from the new config, whose allow list does not admit it (first: %v)",
			n, asked.Load(), b, firstBad.Load())
	}
	if n := failedAsks.Load(); n > 0 {
		t.Errorf("%d of %d asks in %s failed: handed to the new config, which does not admit it? (first: %v)",
			n, asked.Load(), b, firstErr.Load())
	}
	expectAnswer(t, b, "tcp", "127.0.0.1:8000", b)
}
