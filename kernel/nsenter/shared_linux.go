//go:build linux

package nsenter

import (
	"fmt"
	"sync"
	"time"
)

// A config load opens thousands of sockets, several in each namespace, and
// a proxy whose upstreams are inside namespaces opens one for every
// connection. Opening a namespace safely (OpenChecked) takes nine system
// calls; OpenShared keeps a namespace open for a moment after its last use
// and gives the same descriptor to the next caller once one stat has shown
// that the path still names that very namespace. Nothing is held longer
// than ShareLinger after its last use, so in steady state no namespace is
// kept alive by a descriptor of ours.

// ShareLinger is how long OpenShared keeps an unused namespace open. 0
// turns sharing off.
var ShareLinger = 2 * time.Second

type share struct {
	ns    *Namespace
	paths []string // the walk that first opened it, for allow
	refs  int
	last  time.Time
	gone  bool // no longer in shares.m: close with the last reference
}

var shares struct {
	sync.Mutex
	m     map[string]*share // by path
	timer *time.Timer
}

// OpenShared is OpenChecked with the descriptor shared between callers
// for the same path. allow is called on every use, with the paths through
// which the namespace was first opened. Close on the result releases this
// caller's share.
func OpenShared(spec string, allow func(paths []string, id ID) error) (*Namespace, error) {
	path, err := Path(spec)
	if err != nil {
		return nil, err
	}
	s, on := take(path)
	if !on {
		return OpenChecked(spec, allow)
	}
	if s != nil {
		if id, err := idOfPath(path); err == nil && id == s.ns.ID {
			if allow != nil {
				if err := allow(s.paths, id); err != nil {
					s.release()
					return nil, fmt.Errorf("namespace %q: %w", spec, err)
				}
			}
			return s.handle(spec), nil
		}
		// Deleted, or re-created under the same name: open afresh.
		s.retire()
	}
	n, paths, err := openChecked(spec, allow)
	if err != nil {
		return nil, err
	}
	shares.Lock()
	defer shares.Unlock()
	if shares.m == nil {
		shares.m = map[string]*share{}
	}
	if shares.m[path] != nil {
		return n, nil // another caller shared one meanwhile; this one is private
	}
	s = &share{ns: n, paths: paths, refs: 1}
	shares.m[path] = s
	return s.handle(spec), nil
}

// take returns the share for path with a reference taken, or nil, and
// whether sharing is on at all (ShareLinger, read under the lock).
func take(path string) (*share, bool) {
	shares.Lock()
	defer shares.Unlock()
	if ShareLinger <= 0 {
		return nil, false
	}
	s := shares.m[path]
	if s != nil {
		s.refs++
	}
	return s, true
}

// handle is the caller's view of s: its own Spec, one release (Close).
func (s *share) handle(spec string) *Namespace {
	return &Namespace{Spec: spec, Path: s.ns.Path, ID: s.ns.ID, h: s.ns.h, shared: s}
}

func (s *share) release() {
	shares.Lock()
	defer shares.Unlock()
	s.refs--
	s.last = time.Now()
	if s.refs > 0 {
		return
	}
	if s.gone {
		_ = s.ns.h.Close()
		return
	}
	if shares.timer == nil {
		shares.timer = time.AfterFunc(ShareLinger, sweep)
	}
}

// retire drops s from the map and releases the caller's reference.
func (s *share) retire() {
	shares.Lock()
	if shares.m[s.ns.Path] == s {
		delete(shares.m, s.ns.Path)
	}
	s.gone = true
	shares.Unlock()
	s.release()
}

// sweep closes the shares unused for ShareLinger and re-arms itself while
// others remain unused.
func sweep() {
	shares.Lock()
	defer shares.Unlock()
	shares.timer = nil
	var next time.Duration
	for path, s := range shares.m {
		if s.refs > 0 {
			continue // its last release re-arms the sweep
		}
		if idle := time.Since(s.last); idle < ShareLinger {
			if wait := ShareLinger - idle; next == 0 || wait < next {
				next = wait
			}
			continue
		}
		delete(shares.m, path)
		_ = s.ns.h.Close()
	}
	if next > 0 {
		shares.timer = time.AfterFunc(next, sweep)
	}
}
