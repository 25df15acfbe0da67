package nsproxy

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
)

func stateCount() int {
	return states.Len()
}

func testKey(i int) stateKey {
	return stateKey{Network: "tcp", HostPort: fmt.Sprintf("127.0.0.%d:80", i)}
}

// A state lives while something holds it: a connection, then a
// remembered failure until fail_duration has passed.
func TestStateForgottenWhenUnheld(t *testing.T) {
	before := stateCount()
	u := &Upstream{Dial: "x", passive: &PassiveHealthChecks{FailDuration: caddy.Duration(50 * time.Millisecond), MaxFails: 1}}
	st := holdState(testKey(201))
	if holdState(testKey(201)) != st {
		t.Fatal("the same target got two states")
	}
	st.Release()
	h := &Handler{}
	h.countFailure(&cand{u: u, st: st})
	st.Release()
	if got := stateCount(); got != before+1 {
		t.Fatalf("states with a remembered failure: %d, want %d", got, before+1)
	}
	if u.available(st) {
		t.Error("target available with max_fails reached")
	}
	deadline := time.Now().Add(10 * time.Second)
	for stateCount() != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := stateCount(); got != before {
		t.Fatalf("states after the failure was forgotten: %d, want %d", got, before)
	}
	if fresh := holdState(testKey(201)); fresh == st || fresh.Fails.Load() != 0 {
		t.Error("a forgotten target kept its failures")
	} else {
		fresh.Release()
	}
}

// Past states.Max new targets are not remembered, and the map never grows
// beyond it.
func TestStatesCapped(t *testing.T) {
	defer func(n int) { states.Max = n }(states.Max)
	before := stateCount()
	states.Max = before + 3
	var held []*state
	for i := range 10 {
		held = append(held, holdState(testKey(i)))
	}
	if got := stateCount(); got != states.Max {
		t.Errorf("states: %d, want the cap %d", got, states.Max)
	}
	for _, st := range held {
		st.Release()
	}
	if got := stateCount(); got != before {
		t.Errorf("states after release: %d, want %d", got, before)
	}
}

// The active checks of a placeholder upstream follow the targets that
// connections resolved to, and forget a target whose namespace is gone
// (its state with it), one not resolved to for the TTL, and the least
// recently used one past maxSeen.
func TestSeenTargetsEvicted(t *testing.T) {
	nstest.Require(t)
	nss := nstest.Add(t, 2)
	before := stateCount()
	seen := newSeenTargets(time.Hour, t.Name())
	defer seen.close()
	u := &Upstream{Dial: "netns/{l4.netns.name}/tcp/127.0.0.1:80"}
	note := func(ns string) stateKey {
		tg := &target{ns: ns, network: "tcp", hostport: "127.0.0.1:80", id: nstest.ID(t, ns)}
		k := keyOf(tg)
		st := holdState(k)
		seen.note(u, tg, k, st)
		st.Release() // the connection ends
		return k
	}
	k0 := note(nss[0])
	note(nss[1])
	if got := len(seen.sweep(time.Now())); got != 2 {
		t.Fatalf("targets to check: %d, want 2", got)
	}
	nstest.Del(nss[0])
	checks := seen.sweep(time.Now())
	if len(checks) != 1 || checks[0].t.ns != nss[1] {
		t.Fatalf("after deleting %s: checks %v, want only %s", nss[0], checks, nss[1])
	}
	kept := states.Has(k0)
	if kept {
		t.Errorf("state of the deleted namespace's target kept")
	}
	if got := len(seen.sweep(time.Now().Add(2 * time.Hour))); got != 0 {
		t.Errorf("targets to check after the TTL: %d, want 0", got)
	}
	if got := stateCount(); got != before {
		t.Errorf("states: %d, want %d", got, before)
	}

	defer func(n int) { maxSeen = n }(maxSeen)
	maxSeen = 2
	for i := range 5 {
		tg := &target{network: "tcp", hostport: fmt.Sprintf("127.0.0.%d:80", i+1)}
		k := keyOf(tg)
		st := holdState(k)
		seen.note(u, tg, k, st)
		st.Release()
		time.Sleep(time.Millisecond)
	}
	checks = seen.sweep(time.Now())
	if len(checks) != 2 || checks[0].t.hostport < "127.0.0.4" || checks[1].t.hostport < "127.0.0.4" {
		t.Errorf("past maxSeen: %v, want the two most recent", checks)
	}
	seen.close()
	if got := stateCount(); got != before {
		t.Errorf("states after close: %d, want %d", got, before)
	}
}

// Connections, remembered failures, active-check sweeps and a reload
// (a second handler with the same upstreams taking over the targets,
// then the first one closed) all at once: run under -race, and nothing is
// left held afterwards, in the state map or in the reload index.
func TestStatesConcurrentReloadsLeaveNothing(t *testing.T) {
	before := stateCount()
	sig := t.Name()
	u := &Upstream{Dial: "netns/{l4.proxy_protocol.netns}/tcp/127.0.0.1:80",
		passive: &PassiveHealthChecks{FailDuration: caddy.Duration(20 * time.Millisecond), MaxFails: 1}}
	h := &Handler{}
	old := newSeenTargets(time.Hour, sig)
	var cur atomic.Pointer[seenTargets]
	cur.Store(old)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Values a client chooses: many distinct, some repeated.
				tg := &target{ns: fmt.Sprintf("/nonexistent/%d-%d", g, i%50), network: "tcp", hostport: "127.0.0.1:80"}
				k := keyOf(tg)
				st := holdState(k)
				cur.Load().note(u, tg, k, st)
				if i%3 == 0 {
					h.countFailure(&cand{u: u, t: tg, st: st})
				}
				st.Release()
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			cur.Load().sweep(time.Now())
			time.Sleep(time.Millisecond)
		}
	})
	reloads := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); reloads++ {
		next := newSeenTargets(time.Hour, sig)
		prev := cur.Swap(next)
		time.Sleep(5 * time.Millisecond)
		prev.close()
	}
	close(stop)
	wg.Wait()
	cur.Load().close()
	following.Lock()
	_, kept := following.m[sig]
	following.Unlock()
	if kept {
		t.Errorf("reload index still lists handlers of %s after all were closed", sig)
	}
	deadline := time.Now().Add(10 * time.Second)
	for stateCount() != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := stateCount(); got != before {
		t.Errorf("states after %d reloads and every connection, failure and handler ended: %d, want %d", reloads, got, before)
	}
}
