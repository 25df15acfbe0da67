package targets

import (
	"sync"
	"time"
)

// Follower is the set of targets of placeholder upstreams that the active
// checks follow: each target something resolved to, with its state held,
// until it is not resolved to for TTL, its namespace is gone (see Sweep),
// or it is the least recently used past the cap given to Note.
type Follower[T any] struct {
	ttl time.Duration

	mu     sync.Mutex
	m      map[Key]*Followed[T]
	closed bool
}

// Followed is one followed target: what the user noted with it, and its
// state, held while followed.
type Followed[T any] struct {
	Info  T
	State *State
	last  time.Time
}

// NewFollower returns an empty follower that forgets a target not noted
// for ttl.
func NewFollower[T any](ttl time.Duration) *Follower[T] {
	return &Follower[T]{ttl: ttl, m: map[Key]*Followed[T]{}}
}

// Adopt follows the targets prev follows as well (a reloaded config keeps
// the health of its previous version's targets).
func (f *Follower[T]) Adopt(prev *Follower[T]) {
	prev.mu.Lock()
	defer prev.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, e := range prev.m {
		e.State.Hold()
		c := *e
		f.m[k] = &c
	}
}

// Note follows st's target from now on, with info() noted with it when it
// is new; with max targets followed, the least recently noted one is
// forgotten first. A no-op after Close.
func (f *Follower[T]) Note(st *State, max int, info func() T) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if e := f.m[st.key]; e != nil {
		e.last = now
		return
	}
	if len(f.m) >= max {
		var oldest *Followed[T]
		for _, e := range f.m {
			if oldest == nil || e.last.Before(oldest.last) {
				oldest = e
			}
		}
		f.forget(oldest)
	}
	st.Hold()
	f.m[st.key] = &Followed[T]{Info: info(), State: st, last: now}
}

// forget stops following e; f.mu is held.
func (f *Follower[T]) forget(e *Followed[T]) {
	delete(f.m, e.State.key)
	e.State.Release()
}

// Sweep forgets the targets not noted for the TTL and those gone reports
// (nil: none), and returns the others to check. gone is called without
// the lock held, so it may take time (stat namespace files).
func (f *Follower[T]) Sweep(now time.Time, gone func(Followed[T]) bool) []Followed[T] {
	f.mu.Lock()
	all := make([]*Followed[T], 0, len(f.m))
	for _, e := range f.m {
		all = append(all, e)
	}
	f.mu.Unlock()
	// Meanwhile targets are noted (and when each was last noted is
	// updated, which is therefore read only under the lock).
	isGone := map[*Followed[T]]bool{}
	if gone != nil {
		for _, e := range all {
			if gone(Followed[T]{Info: e.Info, State: e.State}) {
				isGone[e] = true
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Followed[T]
	for _, e := range all {
		switch {
		case f.m[e.State.key] != e:
		case isGone[e] || now.Sub(e.last) > f.ttl:
			f.forget(e)
		default:
			out = append(out, Followed[T]{Info: e.Info, State: e.State})
		}
	}
	return out
}

// Close forgets every target; later Notes are ignored.
func (f *Follower[T]) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, e := range f.m {
		f.forget(e)
	}
}
