package nsset

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddy-netns/caddy-netns/kernel/fanin"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/nswatch"
)

// Timings of the reconcile loop. Variables so tests can shorten them.
var (
	// RescanInterval is how often a set looks at its namespaces even
	// without an inotify event. It catches a namespace unmounted without
	// its file being removed.
	RescanInterval = 2 * time.Second
	// WaitNetns is the first retry delay for a file that is not a network
	// namespace yet (`ip netns add` creates the file, then mounts the
	// namespace on it); it doubles up to WaitNetnsMax.
	WaitNetns    = 10 * time.Millisecond
	WaitNetnsMax = 500 * time.Millisecond
	// Retry is the first retry delay after a failure to listen (port
	// taken, permission); it doubles up to RetryMax.
	Retry    = 250 * time.Millisecond
	RetryMax = 5 * time.Second
	// WarnAfter is how long a file may stay a non-namespace before a
	// warning is logged.
	WarnAfter = 5 * time.Second
)

// Kind is how a set serves its members.
type Kind int

const (
	// Stream members are listening TCP sockets on one fanin.Listener.
	Stream Kind = iota
	// Datagram members are UDP sockets on one fanin.PacketConn.
	Datagram
	// Custom members are listeners of another network (SCTP), each with
	// an accept goroutine (Config.Listen makes them).
	Custom
)

// Config describes a set.
type Config struct {
	// Dir and Glob: the members are the files in Dir whose names match
	// Glob (path.Match). Empty Glob: the members are Static.
	Dir, Glob string
	// Static lists the members' namespaces (bare names under
	// /var/run/netns, or paths) when Glob is empty.
	Static []string
	// Kind says how the members are served.
	Kind Kind
	// Network and Addr describe the handles (errors, Addr, LocalAddr).
	Network string
	Addr    net.Addr
	// Listen makes a Custom member's listener of its socket; closing the
	// listener must close the socket (Socket.Close).
	Listen func(Socket) (net.Listener, error)
	// Log is told about failures and members coming and going.
	Log Logger
	// OnStop is called once the last handle has closed and every member
	// is gone.
	OnStop func()
}

// Logger receives the set's log messages. member names the member's
// namespace, empty when the message is about the set.
type Logger interface {
	Debug(msg, member string, err error)
	Warn(msg, member string, err error)
}

type nopLogger struct{}

func (nopLogger) Debug(string, string, error) {}
func (nopLogger) Warn(string, string, error)  {}

// Policy is one handle's view of the namespaces: which it admits, and how
// it opens a member's socket.
type Policy struct {
	// Allows returns nil if the handle's user may use namespace spec.
	Allows func(spec string) error
	// Open opens the member socket in namespace spec and returns the
	// identity of the namespace it opened (which the set checks the
	// socket against).
	Open func(spec string) (nsenter.ID, Socket, error)
}

// ErrStopped is returned by Listen and ListenPacket once the set's last
// handle has closed: make a new set.
var ErrStopped = errors.New("namespace set stopped")

// ErrNamespaceMoved is the error of a member whose namespace file named
// another namespace by the time its socket was opened.
var ErrNamespaceMoved = errors.New("namespace file changed while its socket was being opened")

// Set is one address in every namespace of a set.
type Set struct {
	cfg Config
	log Logger

	ln    *fanin.Listener   // Stream
	pc    *fanin.PacketConn // Datagram
	conns chan acceptedConn // Custom: from the members' accept loops
	turn  chan struct{}     // Stream, Datagram: held by the handle waiting on the fan-in

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	changed chan struct{}

	hmu      sync.Mutex
	handles  []*handle // oldest first
	started  bool
	stopped  bool
	stopOnce sync.Once

	// Written by the reconcile loop only, under mu.
	mu      sync.Mutex
	members map[string]*Member
	waiting map[string]*attempt
}

type acceptedConn struct {
	c net.Conn
	m *Member
}

// attempt tracks an entry that matches but has no member yet.
type attempt struct {
	spec    string
	first   time.Time
	next    time.Time
	delay   time.Duration
	lastErr string
	warned  bool
}

// New returns a set without handles or members. Add a handle (Listen or
// ListenPacket), then Start it.
func New(cfg Config) (*Set, error) {
	if cfg.Log == nil {
		cfg.Log = nopLogger{}
	}
	if cfg.Glob == "" && len(cfg.Static) == 0 {
		return nil, errors.New("namespace set: neither a pattern nor a list of namespaces")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Set{cfg: cfg, log: cfg.Log, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		changed: make(chan struct{}, 1), members: map[string]*Member{}, waiting: map[string]*attempt{}}
	s.turn = make(chan struct{}, 1)
	s.turn <- struct{}{}
	var err error
	switch cfg.Kind {
	case Stream:
		s.ln, err = fanin.NewListener(cfg.Addr)
	case Datagram:
		s.pc, err = fanin.NewPacketConn(cfg.Addr)
	case Custom:
		if cfg.Listen == nil {
			err = errors.New("namespace set of a custom network without a Listen function")
		}
		s.conns = make(chan acceptedConn)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Start adds the members there are now, before it returns, then follows
// them until the last handle closes. Call it once, after the first
// handle.
func (s *Set) Start() {
	s.hmu.Lock()
	if s.started || s.stopped {
		s.hmu.Unlock()
		return
	}
	s.started = true
	s.hmu.Unlock()
	var unsubs []func()
	notify := make(chan struct{}, 1)
	for _, dir := range s.dirs() {
		ch, unsub := nswatch.Subscribe(dir)
		unsubs = append(unsubs, unsub)
		go forward(s.ctx, ch, notify)
	}
	s.reconcile(time.Now())
	go s.run(notify, unsubs)
}

// forward passes the watch's events of one directory on.
func forward(ctx context.Context, from <-chan struct{}, to chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-from:
			select {
			case to <- struct{}{}:
			default:
			}
		}
	}
}

// dirs returns the directories to watch.
func (s *Set) dirs() []string {
	if s.cfg.Glob != "" {
		return []string{s.cfg.Dir}
	}
	var dirs []string
	for _, spec := range s.cfg.Static {
		if p, err := nsenter.Path(spec); err == nil && !slices.Contains(dirs, filepath.Dir(p)) {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	return dirs
}

// Changed tells the set that a user's allow list may have changed: members
// no handle allows any more are closed, and waiting namespaces are tried
// again at once.
func (s *Set) Changed() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// run follows the namespaces until the set is stopped.
func (s *Set) run(notify <-chan struct{}, unsubs []func()) {
	defer close(s.done)
	defer func() {
		for _, u := range unsubs {
			u()
		}
	}()
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
			s.closeFan()
			return
		case <-notify:
		case <-t.C:
		case <-s.changed:
			s.revalidate(time.Now())
		}
		t.Reset(s.reconcile(time.Now()))
	}
}

func (s *Set) closeFan() {
	switch {
	case s.ln != nil:
		_ = s.ln.Close()
	case s.pc != nil:
		_ = s.pc.Close()
	}
}

// entry is a namespace file that should be a member.
type entry struct{ path, spec string }

// entries lists the namespace files that match.
func (s *Set) entries() (map[string]entry, error) {
	out := map[string]entry{}
	if s.cfg.Glob == "" {
		for _, spec := range s.cfg.Static {
			p, err := nsenter.Path(spec)
			if err != nil {
				continue
			}
			if _, err := os.Lstat(p); err == nil {
				out[spec] = entry{p, spec}
			}
		}
		return out, nil
	}
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if ok, _ := path.Match(s.cfg.Glob, e.Name()); ok {
			out[e.Name()] = entry{filepath.Join(s.cfg.Dir, e.Name()), MemberSpec(s.cfg.Dir, e.Name())}
		}
	}
	return out, nil
}

// MemberSpec is how a set over dir names its member name: a bare name
// for entries of /var/run/netns, a path otherwise.
func MemberSpec(dir, name string) string {
	if filepath.Clean(dir) == filepath.Clean(nsenter.RunDir) {
		return name
	}
	return filepath.Join(dir, name)
}

// newest returns the policy of the newest handle, and whether there is
// one.
func (s *Set) newest() (Policy, bool) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	for _, h := range slices.Backward(s.handles) {
		if !h.closed.Load() {
			return h.pol, true
		}
	}
	return Policy{}, false
}

// allowedByAny reports whether some open handle admits m.
func (s *Set) allowedByAny(m *Member) bool {
	s.hmu.Lock()
	hs := slices.Clone(s.handles)
	s.hmu.Unlock()
	for _, h := range hs {
		if !h.closed.Load() && h.allows(m) {
			return true
		}
	}
	return false
}

// revalidate closes the members that no handle admits any more, and lets
// waiting namespaces be tried again at once under the newest handle.
// A member stays while any handle admits it: a config being loaded holds
// the set next to the running one until the load has succeeded or failed,
// so a narrower allow list closes members only once its config is the one
// running, and a failed load closes nothing.
func (s *Set) revalidate(now time.Time) {
	for _, m := range s.members {
		if !s.allowedByAny(m) {
			s.remove(m, "not allowed by the config's namespace allow list")
		}
	}
	s.mu.Lock()
	for _, at := range s.waiting {
		at.next = now
	}
	s.mu.Unlock()
}

// reconcile makes the members match the namespaces and returns how long
// until it should look again.
func (s *Set) reconcile(now time.Time) time.Duration {
	next := RescanInterval
	ents, err := s.entries()
	if err != nil {
		s.log.Warn("listing namespace directory", "", err)
		return next
	}
	for name, m := range s.members {
		e, ok := ents[name]
		switch {
		case !ok:
			s.remove(m, "namespace file removed")
		default:
			if id, err := nsenter.StatID(e.path); err != nil || id != m.id {
				s.remove(m, "namespace file no longer names this namespace")
			}
		}
	}
	for name := range s.waiting {
		if _, ok := ents[name]; !ok {
			s.mu.Lock()
			delete(s.waiting, name)
			s.mu.Unlock()
		}
	}
	pol, ok := s.newest()
	if !ok {
		return next
	}
	for name, e := range ents {
		if s.members[name] != nil {
			continue
		}
		at := s.waiting[name]
		if pol.Allows(e.spec) != nil {
			// Outside the newest config's allow list: not a member, not
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
		err := s.add(pol, name, e, now)
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
			at = &attempt{spec: e.spec, first: now}
			s.mu.Lock()
			s.waiting[name] = at
			s.mu.Unlock()
		}
		s.failed(at, err, now)
		next = min(next, at.next.Sub(now))
	}
	return max(next, time.Millisecond)
}

// failed records a failed attempt and schedules the next.
func (s *Set) failed(at *attempt, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := err.Error()
	if errors.Is(err, nsenter.ErrNotNetns) || errors.Is(err, ErrNamespaceMoved) {
		// Most likely `ip netns add` between creating the file and
		// mounting the namespace on it: look again soon.
		at.delay = min(max(2*at.delay, WaitNetns), WaitNetnsMax)
		if !at.warned && now.Sub(at.first) >= WarnAfter {
			at.warned = true
			s.log.Warn("namespace file is not a network namespace; still waiting", at.spec, err)
		}
	} else {
		at.delay = min(max(2*at.delay, Retry), RetryMax)
		if msg != at.lastErr {
			s.log.Warn("listening in namespace failed; retrying", at.spec, err)
		} else {
			s.log.Debug("listening in namespace failed again", at.spec, err)
		}
	}
	at.lastErr = msg
	at.next = now.Add(at.delay)
}

// add opens the member for entry name.
func (s *Set) add(pol Policy, name string, e entry, now time.Time) error {
	id, sock, err := pol.Open(e.spec)
	if err != nil {
		return err
	}
	// Open opened the file again: make sure the socket is in the
	// namespace that was checked, not in one mounted there in between.
	if got, err := nsenter.SocketID(sock.File()); err == nil && got != id {
		sock.Close()
		return fmt.Errorf("namespace %q: %w", e.spec, ErrNamespaceMoved)
	}
	m := &Member{name: name, spec: e.spec, path: e.path, label: Label(name, id), id: id, since: now, sock: sock}
	switch s.cfg.Kind {
	case Stream:
		err = s.ln.AddFile(m, sock.File())
	case Datagram:
		err = s.pc.AddFile(m, sock.File())
	case Custom:
		var ln net.Listener
		ln, err = s.cfg.Listen(sock)
		if err == nil {
			m.ln = ln
			m.sock = nil // closing ln returns the socket
		}
	}
	if err != nil {
		sock.Close()
		return err
	}
	s.mu.Lock()
	s.members[name] = m
	s.mu.Unlock()
	if m.ln != nil {
		go s.acceptLoop(m)
	}
	s.log.Debug("listening in namespace", e.spec, nil)
	return nil
}

func (s *Set) remove(m *Member, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(m, why)
}

// removeLocked takes m out of the fan-in, then returns its socket.
func (s *Set) removeLocked(m *Member, why string) {
	if s.members[m.name] == m {
		delete(s.members, m.name)
	}
	m.gone.Store(true)
	switch {
	case s.ln != nil:
		_ = s.ln.Remove(m)
	case s.pc != nil:
		_ = s.pc.Remove(m)
	}
	if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.sock != nil {
		_ = m.sock.Close()
	}
	s.forget(m)
	s.log.Debug("stopped listening in namespace ("+why+")", m.spec, nil)
}

// acceptLoop hands a Custom member's connections to the handles until the
// member is closed.
func (s *Set) acceptLoop(m *Member) {
	delay := time.Duration(0)
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if m.gone.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off as net/http does.
			m.custom.errors.Add(1)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", m.spec, err)
			select {
			case <-time.After(delay):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		delay = 0
		if m.gone.Load() {
			c.Close()
			continue
		}
		m.custom.accepted.Add(1)
		select {
		case s.conns <- acceptedConn{c, m}:
		case <-s.ctx.Done():
			_ = c.Close()
			return
		}
	}
}

// stop ends the set: members closed, fan-in closed, OnStop called.
func (s *Set) stop() {
	s.stopOnce.Do(func() {
		s.hmu.Lock()
		started := s.started
		s.stopped = true
		s.hmu.Unlock()
		s.cancel()
		if started {
			<-s.done
		} else {
			s.closeFan()
		}
		if s.cfg.OnStop != nil {
			s.cfg.OnStop()
		}
	})
}
