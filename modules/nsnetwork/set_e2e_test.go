package nsnetwork_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-netns/caddy-netns/internal/testenv/e2e"
	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// One listen address names a set of namespaces (a glob). Caddy accepts
// TCP and UDP from every member through it; each connection knows the
// namespace it arrived in (netns_proxy dials the backend inside that same
// namespace through {l4.netns.name}), and UDP replies leave from the
// member they came in on, even when two namespaces have a client with the
// same address and port.
func TestSetAnswersInEveryMember(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	nss := []string{prefix + "a", prefix + "b", prefix + "c"}
	addNamed(t, nss...)
	other := nstest.Add(t, 1)[0] // does not match the pattern
	for _, ns := range append(nss, other) {
		startNSBackend(t, ns, "127.0.0.1:9000", ns)
	}
	admin.MustLoad(t, setConfig(admin, "set", prefix+"*", "127.0.0.1:8000"), "json")

	for _, ns := range nss {
		expectAnswer(t, ns, "tcp", "127.0.0.1:8000", ns)
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", ns)
	}
	expectNoAnswer(t, other, "tcp", "127.0.0.1:8000")

	// The same client address in two namespaces, at the same time: each
	// gets its own flow and its own namespace's answer.
	ca, err := dialFrom(nss[0], "udp", "127.0.0.1:40000", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := dialFrom(nss[1], "udp", "127.0.0.1:40000", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for i := range 3 {
		for _, c := range []struct {
			ns   string
			conn net.Conn
		}{{nss[0], ca}, {nss[1], cb}} {
			line := fmt.Sprintf("same address %d", i)
			got, err := askOn(c.conn, line)
			if want := c.ns + ": " + line; got != want {
				t.Errorf("client 127.0.0.1:40000 in %s: got %q, %v; want %q", c.ns, got, err, want)
			}
		}
	}
}

// The set follows /var/run/netns while Caddy runs: a namespace created
// later gets its listener (the time is logged), a deleted one has its
// listener closed, leaves the pool, and is really freed by the kernel (a
// veth whose other end is in the deleted namespace disappears, which
// happens only when the namespace is destroyed).
func TestSetFollowsNamespacesLive(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	first := prefix + "first"
	addNamed(t, first)
	startNSBackend(t, first, "127.0.0.1:9000", first)
	keeper := nstest.Add(t, 1)[0]
	admin.MustLoad(t, setConfig(admin, "set", prefix+"*", "127.0.0.1:8000"), "json")
	expectAnswer(t, first, "tcp", "127.0.0.1:8000", first)

	for i := range 3 {
		ns := fmt.Sprintf("%slate%d", prefix, i)
		start := time.Now()
		addNamed(t, ns)
		b := startNSBackend(t, ns, "127.0.0.1:9000", ns)
		id := nstest.ID(t, ns)
		eventually(t, 5*time.Second, ns+" answers over tcp", func() bool {
			return poolHas(id, "tcp", "127.0.0.1:8000") && poolHas(id, "udp", "127.0.0.1:8000") &&
				answers(ns, "tcp", "127.0.0.1:8000")
		})
		t.Logf("%s: listening and answering %v after `ip netns add`", ns, time.Since(start).Round(time.Millisecond))
		expectAnswer(t, ns, "udp", "127.0.0.1:8000", ns)

		// Delete it: a veth from it into keeper shows when the kernel
		// destroys the namespace.
		peer := fmt.Sprintf("nlsv%d", i)
		nstest.Run(t, "ip", "link", "add", "nlsx", "netns", ns, "type", "veth", "peer", "name", peer, "netns", keeper)
		if !linkExists(keeper, peer) {
			t.Fatalf("veth %s in %s was not created", peer, keeper)
		}
		b.Stop()
		start = time.Now()
		nstest.Del(ns)
		eventually(t, 5*time.Second, ns+" leaves the pool", func() bool {
			return !poolHas(id, "tcp", "127.0.0.1:8000") && !poolHas(id, "udp", "127.0.0.1:8000")
		})
		t.Logf("%s: listeners closed %v after `ip netns del`", ns, time.Since(start).Round(time.Millisecond))
		eventually(t, 10*time.Second, ns+" no socket of ours in it", func() bool { return !heldBySocket(id) })
		eventually(t, 20*time.Second, ns+" destroyed by the kernel", func() bool { return !linkExists(keeper, peer) })
		t.Logf("%s: destroyed by the kernel %v after `ip netns del`", ns, time.Since(start).Round(time.Millisecond))
	}
	expectAnswer(t, first, "udp", "127.0.0.1:8000", first)
}

// A namespace where the port is taken is logged and retried; the others
// are not affected, and it gets its listener once the port is free.
func TestSetPortTakenInOneNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	free, taken := prefix+"free", prefix+"taken"
	addNamed(t, free, taken)
	startNSBackend(t, free, "127.0.0.1:9000", free)
	startNSBackend(t, taken, "127.0.0.1:9000", taken)
	blocker := startNSBackend(t, taken, "127.0.0.1:8000", "blocker")

	admin.MustLoad(t, setConfig(admin, "set", prefix+"*", "127.0.0.1:8000"), "json")
	expectAnswer(t, free, "tcp", "127.0.0.1:8000", free)
	expectAnswer(t, free, "udp", "127.0.0.1:8000", free)
	expectAnswer(t, taken, "tcp", "127.0.0.1:8000", "blocker")

	blocker.Stop()
	took := eventually(t, 10*time.Second, taken+" answers once the port is free", func() bool {
		return answers(taken, "tcp", "127.0.0.1:8000") && answers(taken, "udp", "127.0.0.1:8000")
	})
	t.Logf("listening in %s %v after the port was freed", taken, took.Round(time.Millisecond))
}

// Reloading a config that keeps the same set keeps every member socket and
// open connections; a config that drops the set closes its members.
func TestSetReloadKeepsSockets(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	nss := []string{prefix + "a", prefix + "b"}
	addNamed(t, nss...)
	for _, ns := range nss {
		startNSBackend(t, ns, "127.0.0.1:9000", ns)
	}
	cfg := setConfig(admin, "set", prefix+"*", "127.0.0.1:8000")
	admin.MustLoad(t, cfg, "json")
	held, err := dialIn(nss[0], "tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got, err := askOn(held, "before"); got != nss[0]+": before" {
		t.Fatalf("held connection: %q, %v", got, err)
	}
	id := nstest.ID(t, nss[0])
	since := socketSince(t, id, "tcp", "127.0.0.1:8000")

	for i := range 3 {
		// The same set under another server name: a different config.
		admin.MustLoad(t, setConfig(admin, fmt.Sprintf("set%d", i), prefix+"*", "127.0.0.1:8000"), "json")
		if got := socketSince(t, id, "tcp", "127.0.0.1:8000"); !got.Equal(since) {
			t.Fatalf("reload %d re-opened the member socket (since %v, was %v)", i, got, since)
		}
		line := fmt.Sprintf("reload %d", i)
		if got, err := askOn(held, line); got != nss[0]+": "+line {
			t.Fatalf("held connection after reload %d: %q, %v", i, got, err)
		}
		expectAnswer(t, nss[1], "udp", "127.0.0.1:8000", nss[1])
	}

	admin.MustLoad(t, `{`+admin.WithAdmin()+`}`, "json")
	eventually(t, 5*time.Second, "members closed with the set", func() bool {
		return !poolHas(id, "tcp", "127.0.0.1:8000") && !poolHas(id, "udp", "127.0.0.1:8000")
	})
}

// Bad patterns are refused with the address in the error.
func TestSetBadPatternRefused(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	err := admin.Load(setConfig(admin, "set", "/var/run/*/x*", "127.0.0.1:8000"), "json")
	if err == nil || !strings.Contains(err.Error(), "last path element") {
		t.Fatalf("loading a pattern with a wildcard in the directory: %v", err)
	}
}

// `ip netns add` creates the file before it mounts the namespace on it. A
// set waits until the file really is a network namespace, and opens the
// socket in the namespace mounted there, nowhere else.
func TestSetWaitsUntilFileIsNamespace(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	src := nstest.Add(t, 1)[0] // the namespace to mount, outside the pattern
	startNSBackend(t, src, "127.0.0.1:9000", prefix+"late")
	late := prefix + "late"
	path := "/var/run/netns/" + late
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Del(late); os.Remove(path) })

	admin.MustLoad(t, setConfig(admin, "set", prefix+"*", "127.0.0.1:8000"), "json")
	time.Sleep(300 * time.Millisecond)
	for _, s := range nsnetwork.Sockets() {
		if s.Namespace == late {
			t.Fatalf("socket opened for a file that is not a namespace yet: %+v", s)
		}
	}
	start := time.Now()
	nstest.Run(t, "mount", "--bind", "/var/run/netns/"+src, path)
	id := nstest.ID(t, src)
	eventually(t, 5*time.Second, late+" listening once mounted", func() bool {
		return poolHas(id, "tcp", "127.0.0.1:8000") && poolHas(id, "udp", "127.0.0.1:8000")
	})
	t.Logf("listening %v after the mount", time.Since(start).Round(time.Millisecond))
	// Reached from inside the mounted namespace (src), answered there.
	expectAnswer(t, src, "tcp", "127.0.0.1:8000", late)
	expectAnswer(t, src, "udp", "127.0.0.1:8000", late)
}

// A set opens members under the namespace allow list (the netns app) of
// the newest config that holds it: a reload that narrows the list closes
// the members it refuses and keeps the others' sockets; widening it again
// brings them back.
func TestSetFollowsAllowList(t *testing.T) {
	nstest.Require(t)
	admin := e2e.Start(t)
	prefix := setPrefix()
	a, b := prefix+"a", prefix+"b"
	addNamed(t, a, b)
	startNSBackend(t, a, "127.0.0.1:9000", a)
	startNSBackend(t, b, "127.0.0.1:9000", b)
	open := setConfig(admin, "set", prefix+"*", "127.0.0.1:8000")
	narrow := strings.Replace(open, `"apps":{`, `"apps":{"netns":{"allow":["`+a+`"]},`, 1)

	admin.MustLoad(t, open, "json")
	expectAnswer(t, b, "tcp", "127.0.0.1:8000", b)
	idA, idB := nstest.ID(t, a), nstest.ID(t, b)
	since := socketSince(t, idA, "tcp", "127.0.0.1:8000")

	admin.MustLoad(t, narrow, "json")
	eventually(t, 5*time.Second, b+" closed under the narrower allow list", func() bool {
		return !poolHas(idB, "tcp", "127.0.0.1:8000") && !poolHas(idB, "udp", "127.0.0.1:8000")
	})
	expectNoAnswer(t, b, "tcp", "127.0.0.1:8000")
	expectAnswer(t, a, "udp", "127.0.0.1:8000", a)
	for _, w := range getListeners(t, admin, "").Waiting {
		if w.Namespace == b {
			t.Errorf("a namespace outside the allow list is listed as waiting: %+v", w)
		}
	}
	if got := socketSince(t, idA, "tcp", "127.0.0.1:8000"); !got.Equal(since) {
		t.Errorf("the allowed member's socket was re-opened")
	}

	admin.MustLoad(t, open, "json")
	eventually(t, 5*time.Second, b+" back under the open list", func() bool {
		return answers(b, "tcp", "127.0.0.1:8000")
	})
}
