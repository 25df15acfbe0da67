package sctpapp

import (
	"sort"
	"sync"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
)

// Every association the servers accept is in the registry while it lives,
// for the admin listing (GET /sctp/associations), and counted per server
// and per server and upstream for the caddy_sctp_* metrics. Counts are
// process-wide and survive reloads; a series is kept for every server name
// and configured upstream address seen, so their number is bounded by the
// configs loaded, not by tenants or clients.

// entry is a live association.
type entry struct {
	id      uint64
	server  string
	netns   string
	inode   uint64
	local   string
	remote  string
	in, out uint16
	since   time.Time

	// Set once the proxy has an upstream association; guarded by
	// registry.
	upstream string // as configured
	target   string // as dialed
	live     *sctprelay.Live
	up       *upSeries
}

type upKey struct{ server, upstream string }

// srvSeries counts a server's associations.
type srvSeries struct{ total, aborted int64 }

// upSeries counts one upstream's associations of one server; messages and
// bytes of ended associations (live ones are added when collected).
type upSeries struct {
	total, aborted, dialFailures int64
	up, down                     sctprelay.Stats
}

var registry = struct {
	sync.Mutex
	next uint64
	live map[uint64]*entry
	srv  map[string]*srvSeries
	ups  map[upKey]*upSeries
}{live: map[uint64]*entry{}, srv: map[string]*srvSeries{}, ups: map[upKey]*upSeries{}}

// track adds an accepted association of server to the registry.
func track(server string, a *Association) *entry {
	c := a.Conn
	e := &entry{server: server, since: time.Now()}
	if arr, err := a.Arrival(); err == nil {
		e.netns, e.inode = arr.Name, arr.ID.Ino
	}
	if la := c.LocalAddr(); la != nil {
		e.local = la.String()
	}
	if ra := c.RemoteAddr(); ra != nil {
		e.remote = ra.String()
	}
	e.in, e.out, _ = c.Streams()
	registry.Lock()
	defer registry.Unlock()
	registry.next++
	e.id = registry.next
	registry.live[e.id] = e
	s := registry.srv[server]
	if s == nil {
		s = new(srvSeries)
		registry.srv[server] = s
	}
	s.total++
	return e
}

func upSeriesOf(server, upstream string) *upSeries {
	k := upKey{server, upstream}
	s := registry.ups[k]
	if s == nil {
		s = new(upSeries)
		registry.ups[k] = s
	}
	return s
}

// end removes e from the registry; aborted tells whether the association
// ended with an error.
func (e *entry) end(aborted bool) {
	if e == nil {
		return
	}
	registry.Lock()
	defer registry.Unlock()
	delete(registry.live, e.id)
	if aborted {
		registry.srv[e.server].aborted++
	}
	if e.up != nil {
		e.up.up = add(e.up.up, e.live.AToB.Stats())
		e.up.down = add(e.up.down, e.live.BToA.Stats())
		if aborted {
			e.up.aborted++
		}
	}
}

func add(a, b sctprelay.Stats) sctprelay.Stats {
	return sctprelay.Stats{Messages: a.Messages + b.Messages, Bytes: a.Bytes + b.Bytes}
}

// proxied records that a's association is relayed to target t of upstream
// u, and returns the counters to relay with.
func (a *Association) proxied(u *Upstream, t target, configured string) *sctprelay.Live {
	live := new(sctprelay.Live)
	e := a.entry
	if e == nil {
		return live
	}
	registry.Lock()
	defer registry.Unlock()
	e.upstream, e.target, e.live = configured, t.String(), live
	e.up = upSeriesOf(e.server, configured)
	e.up.total++
	return live
}

// dialFailed counts a failed dial of upstream address configured.
func (a *Association) dialFailed(configured string) {
	if a.entry == nil {
		return
	}
	registry.Lock()
	defer registry.Unlock()
	upSeriesOf(a.entry.server, configured).dialFailures++
}

// AssociationInfo is one entry of GET /sctp/associations.
type AssociationInfo struct {
	// ID numbers the associations in the order they were accepted.
	ID     uint64 `json:"id"`
	Server string `json:"server"`
	// Namespace the association arrived in (empty: Caddy's own) and its
	// inode.
	Namespace string `json:"netns,omitempty"`
	Inode     uint64 `json:"netns_inode,omitempty"`
	Local     string `json:"local"`
	Remote    string `json:"remote"`
	// StreamsIn and StreamsOut are the client association's stream
	// counts.
	StreamsIn  uint16    `json:"streams_in"`
	StreamsOut uint16    `json:"streams_out"`
	Since      time.Time `json:"since"`
	// Upstream as configured and Target as dialed; empty until the proxy
	// has an upstream association (and for echo).
	Upstream string `json:"upstream,omitempty"`
	Target   string `json:"target,omitempty"`
	// Messages and bytes forwarded from the client to the upstream (up)
	// and back (down).
	MessagesUp   int64 `json:"messages_up"`
	BytesUp      int64 `json:"bytes_up"`
	MessagesDown int64 `json:"messages_down"`
	BytesDown    int64 `json:"bytes_down"`
}

// Associations lists the live associations with an ID above after, in
// the order they were accepted, at most limit of them, and the number of
// live associations in all.
func Associations(after uint64, limit int) ([]AssociationInfo, int) {
	registry.Lock()
	ids := make([]uint64, 0, len(registry.live))
	for id := range registry.live {
		if id > after {
			ids = append(ids, id)
		}
	}
	total := len(registry.live)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]AssociationInfo, 0, len(ids))
	for _, id := range ids {
		e := registry.live[id]
		ai := AssociationInfo{ID: e.id, Server: e.server, Namespace: e.netns, Inode: e.inode,
			Local: e.local, Remote: e.remote, StreamsIn: e.in, StreamsOut: e.out, Since: e.since,
			Upstream: e.upstream, Target: e.target}
		if e.live != nil {
			up, down := e.live.AToB.Stats(), e.live.BToA.Stats()
			ai.MessagesUp, ai.BytesUp, ai.MessagesDown, ai.BytesDown = up.Messages, up.Bytes, down.Messages, down.Bytes
		}
		out = append(out, ai)
	}
	registry.Unlock()
	return out, total
}

// metricsSnapshot is what the collector exports, taken under the lock.
type metricsSnapshot struct {
	srv map[string]srvMetrics
	ups map[upKey]upMetrics
}

type srvMetrics struct {
	open          int
	total, aborts int64
}

type upMetrics struct {
	open                        int
	total, aborts, dialFailures int64
	up, down                    sctprelay.Stats
}

func snapshot() metricsSnapshot {
	registry.Lock()
	defer registry.Unlock()
	ms := metricsSnapshot{srv: map[string]srvMetrics{}, ups: map[upKey]upMetrics{}}
	for name, s := range registry.srv {
		ms.srv[name] = srvMetrics{total: s.total, aborts: s.aborted}
	}
	for k, s := range registry.ups {
		ms.ups[k] = upMetrics{total: s.total, aborts: s.aborted, dialFailures: s.dialFailures, up: s.up, down: s.down}
	}
	for _, e := range registry.live {
		s := ms.srv[e.server]
		s.open++
		ms.srv[e.server] = s
		if e.up != nil {
			k := upKey{e.server, e.upstream}
			u := ms.ups[k]
			u.open++
			u.up = add(u.up, e.live.AToB.Stats())
			u.down = add(u.down, e.live.BToA.Stats())
			ms.ups[k] = u
		}
	}
	return ms
}
