package nsnetwork

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-netns/caddy-netns/address"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/nswatch"
)

// A set listens on one address in every namespace whose file in a
// directory matches a glob, and follows the directory live: a namespace
// that appears gets a member listener, one that disappears (or whose file
// now names another namespace) has its member closed, so nothing of ours
// keeps a deleted namespace alive.
//
// Members are ordinary pool sockets opened through Listen, so they are
// shared with any other config or address that names the same namespace,
// appear in Sockets (which is how the nsmatch placeholders name them), and
// inner networks such as sctp plug in unchanged. The set itself is shared
// too, keyed by (directory, glob, network, address): a reload that keeps
// the same set keeps every member socket and every open connection.
//
// To Caddy a set is one listener: a net.Listener for streams, whose Accept
// returns connections from every member, or a net.PacketConn for
// datagrams, whose ReadFrom returns a *SetAddr naming the member a
// datagram came in on, so that WriteTo replies from that member's socket.

// Timings of the set's reconcile loop. Variables so tests can shorten them.
var (
	// setRescanInterval is how often a set lists its directory even
	// without an inotify event. It catches a namespace unmounted without
	// its file being removed.
	setRescanInterval = 2 * time.Second
	// setWaitNetns is the first retry delay for a file that is not a
	// network namespace yet (`ip netns add` creates the file, then mounts
	// the namespace on it); it doubles up to setWaitNetnsMax.
	setWaitNetns    = 10 * time.Millisecond
	setWaitNetnsMax = 500 * time.Millisecond
	// setRetry is the first retry delay after a failure to listen (port
	// taken, permission); it doubles up to setRetryMax.
	setRetry    = 250 * time.Millisecond
	setRetryMax = 5 * time.Second
	// setWarnAfter is how long a file may stay a non-namespace before a
	// warning is logged.
	setWarnAfter = 5 * time.Second
)

func init() {
	var (
		mu   sync.Mutex
		last = map[string]string{}
	)
	nswatch.OnError = func(dir string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if last[dir] == err.Error() {
			return // retried every second: say it once
		}
		last[dir] = err.Error()
		logger().Warn("watching namespace directory; sets still look every few seconds",
			zap.String("directory", dir), zap.Error(err))
	}
}

type setKey struct {
	dir, glob, network, address string
}

// nsSet is shared by every handle (config) that names the same set.
type nsSet struct {
	key     setKey
	pattern string // the namespace part as written
	addr    Address
	port    uint
	stream  bool
	log     *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	refs   int // guarded by sets

	conns   chan net.Conn
	packets chan *dgram

	// handles are the open handles, oldest first (guarded by sets).
	// Members are opened in the Caddy context of the newest one, so that
	// its config's allow list of namespaces applies to them.
	handles       []*handleBase
	policyChanged chan struct{}

	// Written only by the reconcile loop, under mu; read by others
	// under mu (the loop itself reads without it).
	mu      sync.Mutex
	members map[string]*member
	waiting map[string]*attempt
}

// member is the listener of a set in one namespace.
type member struct {
	set   *nsSet
	name  string // entry in the set's directory
	spec  string // as given to Listen: a bare name or a path
	tag   string // names the member in SetAddr.String
	id    nsenter.ID
	since time.Time

	handle any // net.Listener or net.PacketConn from Listen
	udp    interface {
		WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	}
	ctx    context.Context
	cancel context.CancelFunc

	stats memberStats

	// Accepted connections not known to be closed yet, for counting open
	// connections without wrapping them (a wrapper would take the
	// kernel's splice path away from the proxy).
	openMu   sync.Mutex
	open     []syscall.Conn
	openMark int
}

type memberStats struct {
	accepted, errors      atomic.Uint64
	packetsIn, packetsOut atomic.Uint64
	bytesIn, bytesOut     atomic.Uint64
}

// attempt tracks an entry that matches but has no member yet.
type attempt struct {
	first   time.Time
	next    time.Time
	delay   time.Duration
	lastErr string
	warned  bool
}

var sets = struct {
	sync.Mutex
	m map[setKey]*nsSet
}{m: map[setKey]*nsSet{}}

// listenSet returns a new handle on the shared set that a names, creating
// the set (and listening in every namespace that already matches) if it
// is not open yet. Closing the handle returns its reference; the caller
// closes it when its config ends (see closeWhenDone).
func listenSet(ctx context.Context, a Address, portOffset uint) (any, error) {
	if err := setsSupported(); err != nil {
		return nil, err
	}
	dir, glob, err := a.SetPattern()
	if err != nil {
		return nil, err
	}
	port := a.StartPort + portOffset
	stream := true
	switch a.Network {
	case "udp", "udp4", "udp6":
		stream = false
	case "tcp", "tcp4", "tcp6":
	default:
		if _, ok := lookupInner(a.Network); !ok {
			return nil, address.CheckNetwork(a.Network)
		}
	}
	key := setKey{dir: dir, glob: glob, network: a.Network, address: a.HostPort(portOffset)}

	h, base, err := newHandle(key, stream)
	if err != nil {
		return nil, err
	}
	if cc, ok := ctx.(caddy.Context); ok {
		base.cfg = &cc
	}

	sets.Lock()
	s := sets.m[key]
	created := s == nil
	if created {
		s = newSet(key, a, port, stream)
		sets.m[key] = s
	}
	s.refs++
	base.set = s
	s.handles = append(s.handles, base)
	sets.Unlock()
	if created {
		// Listen in the namespaces that are already there before the
		// config finishes loading, then follow the directory.
		notify, unsubscribe := nswatch.Subscribe(dir)
		s.reconcile(time.Now())
		go s.run(notify, unsubscribe)
	} else {
		s.configChanged()
	}
	if ln, ok := h.(net.Listener); ok {
		return wrapSetListener(a.Network, ln), nil
	}
	return h, nil
}

func newSet(key setKey, a Address, port uint, stream bool) *nsSet {
	ctx, cancel := context.WithCancel(context.Background())
	s := &nsSet{
		key: key, pattern: a.Namespace, addr: a, port: port, stream: stream,
		log: logger().With(zap.String("netns", a.Namespace), zap.String("network", key.network),
			zap.String("address", key.address)),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), policyChanged: make(chan struct{}, 1),
		members: map[string]*member{}, waiting: map[string]*attempt{},
	}
	if stream {
		s.conns = make(chan net.Conn)
	} else {
		s.packets = make(chan *dgram, 256)
	}
	return s
}

// configChanged tells the run loop that the latest config holding the set
// may have changed, so its rules for namespaces may have too.
func (s *nsSet) configChanged() {
	select {
	case s.policyChanged <- struct{}{}:
	default:
	}
}

// listenContext returns the context to open a member with: ctx, carried in
// the Caddy context of the latest config holding the set, so that the
// config's allow list of namespaces applies.
func (s *nsSet) listenContext(ctx context.Context) context.Context {
	sets.Lock()
	var cfg *caddy.Context
	for _, h := range slices.Backward(s.handles) {
		if h.cfg != nil {
			cfg = h.cfg
			break
		}
	}
	sets.Unlock()
	if cfg == nil {
		return ctx
	}
	cc := *cfg
	cc.Context = ctx
	return cc
}

// release drops a handle's reference; the last one stops the set and
// closes every member before returning.
func (s *nsSet) release(h *handleBase) {
	sets.Lock()
	s.refs--
	s.handles = slices.DeleteFunc(s.handles, func(x *handleBase) bool { return x == h })
	last := s.refs == 0
	if last && sets.m[s.key] == s {
		delete(sets.m, s.key)
	}
	sets.Unlock()
	if !last {
		s.configChanged()
		return
	}
	s.cancel()
	<-s.done
}

// revalidate closes the members that no config holding the set allows any
// more, and lets waiting namespaces be tried again at once under the
// latest one. Allowed members keep their sockets.
//
// A member stays while any config holding the set allows it: a config
// being loaded holds the set next to the running one until the load has
// succeeded (Caddy stops the old config only then) or failed (its handle
// is closed), so a narrower allow list closes members only once the config
// that carries it is the one running, and a failed load closes nothing.
func (s *nsSet) revalidate(now time.Time) {
	pols, err := s.policies()
	if err != nil {
		s.log.Error("namespace allow list", zap.Error(err))
		return
	}
	for _, m := range s.members {
		var refused error
		for _, pol := range pols {
			if refused = pol.Allows(m.spec); refused == nil {
				break
			}
		}
		if refused != nil {
			s.remove(m, "not allowed by the config's namespace allow list")
		}
	}
	s.mu.Lock()
	for _, at := range s.waiting {
		at.next = now
	}
	s.mu.Unlock()
}

// policies returns the namespace policy of each config holding the set.
func (s *nsSet) policies() ([]*allow.Policy, error) {
	sets.Lock()
	ctxs := make([]context.Context, 0, len(s.handles))
	for _, h := range s.handles {
		if h.cfg != nil {
			ctxs = append(ctxs, *h.cfg)
		} else {
			ctxs = append(ctxs, s.ctx)
		}
	}
	sets.Unlock()
	pols := make([]*allow.Policy, 0, len(ctxs))
	for _, ctx := range ctxs {
		pol, err := PolicyFor(ctx)
		if err != nil {
			return nil, err
		}
		pols = append(pols, pol)
	}
	return pols, nil
}

// run follows the directory until the set is stopped.
func (s *nsSet) run(notify <-chan struct{}, unsubscribe func()) {
	defer close(s.done)
	defer unsubscribe()
	t := time.NewTimer(s.reconcile(time.Now()))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			for _, m := range s.members {
				s.removeLocked(m, "listener stopped")
			}
			s.mu.Unlock()
			return
		case <-notify:
		case <-t.C:
		case <-s.policyChanged:
			s.revalidate(time.Now())
		}
		t.Reset(s.reconcile(time.Now()))
	}
}

// reconcile makes the members match the directory and returns how long
// until it should look again.
func (s *nsSet) reconcile(now time.Time) time.Duration {
	next := setRescanInterval
	names := map[string]bool{}
	ents, err := os.ReadDir(s.key.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("listing namespace directory", zap.Error(err))
		return next
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if ok, _ := path.Match(s.key.glob, e.Name()); ok {
			names[e.Name()] = true
		}
	}

	for name, m := range s.members {
		switch {
		case !names[name]:
			s.remove(m, "namespace file removed")
		default:
			if id, err := nsenter.StatID(filepath.Join(s.key.dir, name)); err != nil || id != m.id {
				s.remove(m, "namespace file no longer names this namespace")
			}
		}
	}
	for name := range s.waiting {
		if !names[name] {
			s.mu.Lock()
			delete(s.waiting, name)
			s.mu.Unlock()
		}
	}

	pol, err := PolicyFor(s.listenContext(s.ctx))
	if err != nil {
		s.log.Error("namespace allow list", zap.Error(err))
		return next
	}
	for name := range names {
		if s.members[name] != nil {
			continue
		}
		at := s.waiting[name]
		if pol.Allows(address.MemberSpec(s.key.dir, name)) != nil {
			// Outside the config's allow list: not a member, not
			// waiting either.
			if at != nil {
				s.mu.Lock()
				delete(s.waiting, name)
				s.mu.Unlock()
			}
			continue
		}
		if at != nil && now.Before(at.next) {
			next = min(next, at.next.Sub(now))
			continue
		}
		err := s.add(pol, name, now)
		if err == nil {
			if at != nil {
				s.mu.Lock()
				delete(s.waiting, name)
				s.mu.Unlock()
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone again; an event will follow
		}
		if at == nil {
			at = &attempt{first: now}
			s.mu.Lock()
			s.waiting[name] = at
			s.mu.Unlock()
		}
		s.failed(name, at, err, now)
		next = min(next, at.next.Sub(now))
	}
	return max(next, time.Millisecond)
}

// failed records a failed attempt and schedules the next.
func (s *nsSet) failed(name string, at *attempt, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := err.Error()
	spec := address.MemberSpec(s.key.dir, name)
	if errors.Is(err, nsenter.ErrNotNetns) || errors.Is(err, errNamespaceMoved) {
		// Most likely `ip netns add` between creating the file and
		// mounting the namespace on it: look again soon.
		at.delay = min(max(2*at.delay, setWaitNetns), setWaitNetnsMax)
		if !at.warned && now.Sub(at.first) >= setWarnAfter {
			at.warned = true
			s.log.Warn("namespace file is not a network namespace; still waiting",
				zap.String("member", spec), zap.Error(err))
		}
	} else {
		at.delay = min(max(2*at.delay, setRetry), setRetryMax)
		if msg != at.lastErr {
			s.log.Warn("listening in namespace failed; retrying",
				zap.String("member", spec), zap.Duration("retry_max", setRetryMax), zap.Error(err))
		} else {
			s.log.Debug("listening in namespace failed again", zap.String("member", spec), zap.Error(err))
		}
	}
	at.lastErr = msg
	at.next = now.Add(at.delay)
}

var errNamespaceMoved = errors.New("namespace file changed while its socket was being opened")

// add opens the member for entry name.
func (s *nsSet) add(pol *allow.Policy, name string, now time.Time) error {
	spec := address.MemberSpec(s.key.dir, name)
	ns, err := pol.Open(spec)
	if err != nil {
		return err
	}
	id := ns.ID
	ns.Close()

	ctx, cancel := context.WithCancel(s.ctx)
	a := Address{Namespace: spec, Network: s.key.network, Host: s.addr.Host, StartPort: s.port, EndPort: s.port}
	h, err := Listen(s.listenContext(ctx), a, 0)
	if err != nil {
		cancel()
		return err
	}
	m := &member{set: s, name: name, spec: spec, tag: memberTag(name, id), id: id, since: now,
		handle: h, ctx: ctx, cancel: cancel}
	fail := func(err error) error {
		closeHandle(h)
		cancel()
		return err
	}
	// Listen opened the file again: make sure the socket is in the
	// namespace we checked, not in one mounted there in between.
	if sc, ok := h.(syscall.Conn); ok {
		got, err := nsenter.SocketID(sc)
		if err == nil && got != id {
			return fail(fmt.Errorf("namespace %q: %w", spec, errNamespaceMoved))
		}
	}
	switch h := h.(type) {
	case net.Listener:
		if !s.stream {
			return fail(fmt.Errorf("network %s gave a stream listener for a datagram set", s.key.network))
		}
		go m.acceptLoop(h)
	case net.PacketConn:
		if s.stream {
			return fail(fmt.Errorf("network %s gave a packet conn; sets of %s are not supported", s.key.network, s.key.network))
		}
		w, ok := h.(interface {
			WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
		})
		sc, ok2 := h.(syscall.Conn)
		if !ok || !ok2 {
			return fail(fmt.Errorf("network %s: unsupported packet conn %T", s.key.network, h))
		}
		m.udp = w
		go m.readLoop(sc)
	default:
		return fail(fmt.Errorf("network %s: unsupported handle %T", s.key.network, h))
	}
	s.mu.Lock()
	s.members[name] = m
	s.mu.Unlock()
	s.log.Debug("listening in namespace", zap.String("member", spec), zap.Stringer("netns_id", id))
	return nil
}

func (s *nsSet) remove(m *member, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(m, why)
}

func (s *nsSet) removeLocked(m *member, why string) {
	if s.members[m.name] == m {
		delete(s.members, m.name)
	}
	m.cancel()
	closeHandle(m.handle)
	s.log.Debug("stopped listening in namespace", zap.String("member", m.spec),
		zap.Stringer("netns_id", m.id), zap.String("reason", why))
}

func closeHandle(h any) {
	if c, ok := h.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// memberTag names a member in SetAddr.String: the namespace's name when
// it keeps the string parseable as host:port, its inode otherwise.
func memberTag(name string, id nsenter.ID) string {
	if name != "" && !strings.ContainsAny(name, ":[]%") {
		return name
	}
	return strconv.FormatUint(id.Ino, 10)
}

// acceptLoop hands the member's connections to the set until the member
// is closed.
func (m *member) acceptLoop(ln net.Listener) {
	s := m.set
	delay := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off as net/http does.
			m.stats.errors.Add(1)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", zap.String("member", m.spec), zap.Duration("retry_in", delay), zap.Error(err))
			select {
			case <-time.After(delay):
				continue
			case <-m.ctx.Done():
				return
			}
		}
		delay = 0
		m.stats.accepted.Add(1)
		m.track(c)
		select {
		case s.conns <- c:
		case <-m.ctx.Done():
			_ = c.Close()
			return
		}
	}
}

// track remembers an accepted connection for openConns.
func (m *member) track(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	m.openMu.Lock()
	defer m.openMu.Unlock()
	m.open = append(m.open, sc)
	if len(m.open) > 2*m.openMark+64 {
		m.pruneLocked()
	}
}

// openConns returns how many accepted connections are still open.
func (m *member) openConns() int {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	m.pruneLocked()
	return len(m.open)
}

// pruneLocked forgets the connections that have been closed: a closed
// conn's RawConn refuses Control.
func (m *member) pruneLocked() {
	kept := m.open[:0]
	for _, sc := range m.open {
		if rc, err := sc.SyscallConn(); err == nil && rc.Control(func(uintptr) {}) == nil {
			kept = append(kept, sc)
		}
	}
	clear(m.open[len(kept):])
	m.open = kept
	m.openMark = len(kept)
}
