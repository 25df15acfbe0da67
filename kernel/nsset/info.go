package nsset

import (
	"cmp"
	"slices"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// MemberInfo describes one member, for the admin API and metrics.
type MemberInfo struct {
	// Spec names the member's namespace; ID is its identity.
	Spec string
	ID   nsenter.ID
	// Since is when the member was added.
	Since time.Time
	// Counters: Accepted connections (streams), datagrams and bytes in
	// and out (datagrams), failed accepts, reads and writes.
	Accepted, Errors                         uint64
	PacketsIn, PacketsOut, BytesIn, BytesOut uint64
	// OpenConns is how many connections accepted on the member are not
	// closed yet; -1 for datagrams.
	OpenConns int
}

// WaitingInfo describes a namespace that should be a member but has no
// socket yet, and why.
type WaitingInfo struct {
	Spec         string
	Since, Retry time.Time
	Error        string
}

// Members describes the members, sorted by Spec.
func (s *Set) Members() []MemberInfo {
	s.mu.Lock()
	ms := make([]*Member, 0, len(s.members))
	for _, m := range s.members {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		mi := MemberInfo{Spec: m.spec, ID: m.id, Since: m.since, OpenConns: -1}
		switch {
		case s.ln != nil:
			if st := s.ln.Stats(m); st != nil {
				mi.Accepted, mi.Errors = st.Accepted.Load(), st.Errors.Load()
			}
		case s.pc != nil:
			if st := s.pc.Stats(m); st != nil {
				mi.Errors = st.Errors.Load()
				mi.PacketsIn, mi.BytesIn = st.PacketsIn.Load(), st.BytesIn.Load()
				mi.PacketsOut, mi.BytesOut = st.PacketsOut.Load(), st.BytesOut.Load()
			}
		default:
			mi.Accepted, mi.Errors = m.custom.accepted.Load(), m.custom.errors.Load()
		}
		if s.pc == nil {
			mi.OpenConns = m.openConns()
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MemberInfo) int { return cmp.Compare(a.Spec, b.Spec) })
	return out
}

// Waiting describes the namespaces still waited for, sorted by Spec.
func (s *Set) Waiting() []WaitingInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WaitingInfo, 0, len(s.waiting))
	for _, at := range s.waiting {
		out = append(out, WaitingInfo{Spec: at.spec, Since: at.first, Retry: at.next, Error: at.lastErr})
	}
	slices.SortFunc(out, func(a, b WaitingInfo) int { return cmp.Compare(a.Spec, b.Spec) })
	return out
}
