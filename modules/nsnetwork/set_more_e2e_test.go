package nsnetwork_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// A namespace deleted while a connection through the set is open: its
// listeners close at once, the open connection keeps working until it
// ends, and then the kernel frees the namespace.
func TestSetDeletedNamespaceWithOpenConnection(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	ns := prefix + "a"
	addNamed(t, ns)
	keeper := nstest.Add(t, 1)[0]
	b := startNSBackend(t, ns, "127.0.0.1:9000", ns)
	admin.MustLoad(t, setConfig(admin, "set", prefix+"*", "127.0.0.1:8000"), "json")
	id := nstest.ID(t, ns)

	held, err := dialIn(ns, "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got, err := askOn(held, "before"); got != ns+": before" {
		t.Fatalf("held connection: %q, %v", got, err)
	}
	nstest.Run(t, "ip", "link", "add", "nlsx", "netns", ns, "type", "veth", "peer", "name", "nlsdel", "netns", keeper)

	nstest.Del(ns)
	eventually(t, 5*time.Second, "listeners closed", func() bool {
		return !poolHas(id, "tcp", "127.0.0.1:8000") && !poolHas(id, "udp", "127.0.0.1:8000")
	})
	if got, err := askOn(held, "after delete"); got != ns+": after delete" {
		t.Errorf("open connection after its namespace was deleted: %q, %v", got, err)
	}
	if !linkExists(keeper, "nlsdel") {
		t.Errorf("namespace destroyed while a connection in it was open")
	}
	held.Close()
	b.Stop()
	eventually(t, 20*time.Second, "namespace destroyed once its connections ended", func() bool {
		return !linkExists(keeper, "nlsdel")
	})
}

// Caddy's http app serves on a set like on any listener.
func TestSetHTTPApp(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	nss := []string{prefix + "a", prefix + "b"}
	addNamed(t, nss...)
	admin.MustLoad(t, fmt.Sprintf(`{%s,"apps":{"http":{"servers":{"set":{
		"listen":["netns/%s*/tcp/127.0.0.1:8080"],
		"routes":[{"handle":[{"handler":"static_response","body":"hello {http.request.host}"}]}]}}}}}`,
		admin.WithAdmin(), prefix), "json")
	for _, ns := range nss {
		n, err := nsenter.Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			// The Host header names the namespace; the connection
			// goes to the set's address inside it.
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return nsenter.Dial(ctx, n, network, "127.0.0.1:8080")
			},
		}}
		resp, err := client.Get("http://" + ns + ":8080/")
		n.Close()
		if err != nil {
			t.Errorf("GET in %s: %v", ns, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello "+ns {
			t.Errorf("GET in %s: %s %q", ns, resp.Status, body)
		}
	}
}

// The netns matcher takes patterns too: one set, routed by a glob of its
// members' names, over tcp and udp.
func TestSetMatcherPattern(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	a1, a2, b := prefix+"a1", prefix+"a2", prefix+"b"
	addNamed(t, a1, a2, b)
	for _, ns := range []string{a1, a2, b} {
		startNSBackend(t, ns, "127.0.0.1:9000", ns)
	}
	admin.MustLoad(t, fmt.Sprintf(`{%s,"apps":{"layer4":{"servers":{"set":{
		"listen":["netns/%[2]s*/tcp/127.0.0.1:8000","netns/%[2]s*/udp/127.0.0.1:8000"],
		"routes":[
			{"match":[{"netns":["%[2]sa*"]}],
			 "handle":[{"handler":"netns_proxy","upstreams":[{"dial":"netns/{l4.netns.name}/{l4.netns.network}/127.0.0.1:9000"}]}]},
			{"handle":[{"handler":"echo"}]}]}}}}}`, admin.WithAdmin(), prefix), "json")
	for _, network := range []string{"tcp", "udp"} {
		expectAnswer(t, a1, network, "127.0.0.1:8000", a1)
		expectAnswer(t, a2, network, "127.0.0.1:8000", a2)
		if got, err := ask(b, network, "127.0.0.1:8000", "ping"); got != "ping" {
			t.Errorf("%s in %s (not matched: echo): %q, %v", network, b, got, err)
		}
	}
}
