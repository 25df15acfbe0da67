package targets

import (
	"fmt"
	"testing"
	"time"
)

func key(i int) Key { return Key{Network: "tcp", HostPort: fmt.Sprintf("127.0.0.%d:80", i)} }

// One state per key while held; past Max a new key gets an unshared state
// and the first such Hold says so (once, until the map is below 90% again).
func TestRegistryCapAndWarning(t *testing.T) {
	r := NewRegistry(2)
	a, _ := r.Hold(key(1))
	if b, _ := r.Hold(key(1)); b != a {
		t.Fatal("the same key got two states")
	}
	b, full := r.Hold(key(2))
	if full {
		t.Error("full below the cap")
	}
	c, full := r.Hold(key(3))
	if !full || r.Has(key(3)) || r.Len() != 2 {
		t.Errorf("past the cap: full %v, remembered %v, len %d; want true, false, 2", full, r.Has(key(3)), r.Len())
	}
	if _, full := r.Hold(key(4)); full {
		t.Error("warned twice")
	}
	c.Release()
	a.Release()
	if r.Len() != 2 {
		t.Errorf("len after one of two references: %d, want 2", r.Len())
	}
	a.Release()
	b.Release()
	if r.Len() != 0 {
		t.Errorf("len after every release: %d, want 0", r.Len())
	}
	if _, full := r.Hold(key(5)); full {
		t.Error("full in an empty registry")
	}
}

// Record marks down after fall failures in a row and up after rise
// successes in a row.
func TestRecord(t *testing.T) {
	r := NewRegistry(10)
	s, _ := r.Hold(key(1))
	defer s.Release()
	steps := []struct {
		ok, changed, unhealthy bool
	}{{false, false, false}, {true, false, false}, {false, false, false}, {false, true, true}, {true, false, true}, {true, true, false}}
	for i, st := range steps {
		if got := s.Record(st.ok, 2, 2); got != st.changed || s.Unhealthy.Load() != st.unhealthy {
			t.Fatalf("step %d: changed %v unhealthy %v, want %v %v", i, got, s.Unhealthy.Load(), st.changed, st.unhealthy)
		}
	}
}

// A follower holds what it follows, evicts the least recently noted past
// the cap, forgets after the TTL, and releases everything on Close.
func TestFollower(t *testing.T) {
	r := NewRegistry(100)
	f := NewFollower[int](time.Hour)
	for i := range 4 {
		s, _ := r.Hold(key(i))
		f.Note(s, 2, func() int { return i })
		s.Release()
		time.Sleep(time.Millisecond)
	}
	got := f.Sweep(time.Now(), nil)
	if len(got) != 2 || got[0].Info < 2 || got[1].Info < 2 || r.Len() != 2 {
		t.Errorf("followed %v (registry %d), want the two most recent", got, r.Len())
	}
	next := NewFollower[int](time.Hour)
	next.Adopt(f)
	f.Close()
	if r.Len() != 2 {
		t.Errorf("registry after the adopter took over: %d, want 2", r.Len())
	}
	if got := next.Sweep(time.Now(), func(e Followed[int]) bool { return e.Info == 3 }); len(got) != 1 || got[0].Info != 2 {
		t.Errorf("after a gone target: %v, want only 2", got)
	}
	if got := next.Sweep(time.Now().Add(2*time.Hour), nil); len(got) != 0 {
		t.Errorf("after the TTL: %v, want none", got)
	}
	s, _ := r.Hold(key(9))
	next.Note(s, 2, func() int { return 9 })
	s.Release()
	next.Close()
	if r.Len() != 0 {
		t.Errorf("registry after Close: %d, want 0", r.Len())
	}
}
