// Package sctpapp is a Caddy app that proxies SCTP associations, in Caddy's
// own network namespace (listen address sctp/<host>:<port>) and inside
// other ones (netns/<namespace>/sctp/<host>:<port>), in the style of
// caddy-l4: servers with listen addresses and routes whose handlers are
// modules in the sctp.handlers namespace (proxy, echo).
//
// SCTP keeps message boundaries, streams and a payload protocol identifier
// per message, so it cannot go through caddy-l4's byte-stream handlers;
// this app forwards whole messages with their metadata (see sctprelay).
//
// Listening sockets come from nsnetwork's shared pool: the same
// address in the old and the new config shares one socket across a
// reload, and associations already accepted keep running.
package sctpapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the sctp app: SCTP servers, each with listen addresses and routes.
type App struct {
	// Servers to run, by a name of your choosing. Default: none (the
	// app then does nothing).
	Servers map[string]*Server `json:"servers,omitempty"`

	ctx       caddy.Context
	logger    *zap.Logger
	listeners []Listener
}

// Server accepts SCTP associations on its listen addresses and hands each
// to its route's handler.
type Server struct {
	// Listen addresses: sctp/<host>:<port> (or sctp4, sctp6) in Caddy's
	// own network namespace, or netns/<namespace>/sctp/<host>:<port>
	// inside a network namespace (a name under /var/run/netns or an
	// absolute path). An empty host listens on all addresses; a port
	// range listens on each port. Several IPv4 addresses joined by commas
	// make one multi-homed endpoint (sctp_bindx):
	// netns/ns1/sctp/10.0.0.1,10.0.1.1:38412; peers are told all of them
	// and fail over between them. Required: at least one.
	Listen []string `json:"listen,omitempty"`

	// Routes handle the associations: the first route whose matchers
	// match an association gets it; one that no route matches is aborted.
	// A route without matchers matches every association. Required: at least
	// one.
	Routes []*Route `json:"routes,omitempty"`

	// MaxMessageSize is the largest message, in bytes, forwarded or
	// echoed on this server's associations, each way (the proxy applies it
	// to the upstream association too). Messages of any size up to it are
	// read piece by piece as the kernel delivers them and sent whole, and
	// each socket's send buffer is raised to hold one (Linux cannot send a
	// message larger than the send buffer). A larger message aborts that
	// association (and its upstream's) at once, with a warning in the log;
	// other associations go on. Memory: an idle association holds no
	// buffer; one with a message in transit holds that message, at most
	// this size. Default: 4 MiB (4194304).
	MaxMessageSize int `json:"max_message_size,omitempty"`

	// Tuning sets SCTP parameters (retransmission timeouts, heartbeats,
	// retransmission limits, SACKs, Nagle, send buffer) of every
	// association this server accepts, right after it is accepted. Stream
	// counts and INIT limits act when an association starts and are
	// refused here; see the proxy's tuning for upstream dials. Default:
	// none (the kernel's net.sctp.* values of the namespace).
	Tuning *Tuning `json:"tuning,omitempty"`

	name   string
	logger *zap.Logger
	addrs  []caddy.NetworkAddress
}

// MaxMessageSizeLimit is the largest max_message_size accepted: 1 GiB.
const MaxMessageSizeLimit = 1 << 30

// Route is a list of matcher sets and a handler.
type Route struct {
	// MatcherSetsRaw are the matcher sets of this route: it matches an
	// association when all matchers of any one set match (an empty list
	// matches every association). Matchers are modules in the
	// sctp.matchers namespace: netns, remote_ip, local_port, ppid.
	// Default: none (the route matches every association).
	MatcherSetsRaw []caddy.ModuleMap `json:"match,omitempty" caddy:"namespace=sctp.matchers"`

	// Handlers for the associations of this route, modules in the
	// sctp.handlers namespace, named by their "handler" key. Required:
	// exactly one (proxy and echo end the association).
	HandlersRaw []json.RawMessage `json:"handle,omitempty" caddy:"namespace=sctp.handlers inline_key=handler"`

	matcherSets [][]Matcher
	handlers    []Handler
}

// matches reports whether the route takes a.
func (r *Route) matches(a *Association) (bool, error) {
	if len(r.matcherSets) == 0 {
		return true, nil
	}
	for _, set := range r.matcherSets {
		all := true
		for _, m := range set {
			ok, err := m.MatchSCTP(a)
			if err != nil {
				return false, err
			}
			if !ok {
				all = false
				break
			}
		}
		if all {
			return true, nil
		}
	}
	return false, nil
}

// Handler handles SCTP associations. Modules in the sctp.handlers
// namespace implement it.
type Handler interface {
	// HandleSCTP handles one association until it ends. The server
	// closes c after HandleSCTP returns. The returned error explains an
	// abnormal end (an abort, an unreachable upstream); it is logged at
	// debug level, since ABORTs are part of normal SCTP life.
	HandleSCTP(c *sctpnet.Conn) error
}

// Listener is what the sctp networks return to Caddy: a handle on a shared
// listening SCTP socket.
type Listener interface {
	AcceptConn(ctx context.Context) (*sctpnet.Conn, error)
	Addr() net.Addr
	Close() error
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "sctp",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision parses the listen addresses and loads the handlers.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	for name, s := range a.Servers {
		if s == nil {
			return fmt.Errorf("server %q: empty", name)
		}
		if err := s.provision(ctx, name, a.logger.With(zap.String("server", name))); err != nil {
			return fmt.Errorf("server %q: %w", name, err)
		}
	}
	return nil
}

func (s *Server) provision(ctx caddy.Context, name string, logger *zap.Logger) error {
	s.name, s.logger = name, logger
	if s.MaxMessageSize < 0 || s.MaxMessageSize > MaxMessageSizeLimit {
		return fmt.Errorf("max_message_size: %d is outside 1 to %d bytes", s.MaxMessageSize, MaxMessageSizeLimit)
	}
	if s.MaxMessageSize == 0 {
		s.MaxMessageSize = sctpnet.DefaultMaxMessageSize
	}
	if err := s.Tuning.validate(false); err != nil {
		return fmt.Errorf("tuning: %w", err)
	}
	if len(s.Listen) == 0 {
		return errors.New("listen: no address")
	}
	for i, addr := range s.Listen {
		na, err := parseListenAddress(addr)
		if err != nil {
			return fmt.Errorf("listen[%d]: %w", i, err)
		}
		s.addrs = append(s.addrs, na)
	}
	for i, r := range s.Routes {
		if r == nil {
			return fmt.Errorf("routes[%d]: empty", i)
		}
		sets, err := ctx.LoadModule(r, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("routes[%d]: loading matchers: %w", i, err)
		}
		r.matcherSets = nil
		for _, set := range sets.([]map[string]any) {
			var ms []Matcher
			for _, m := range set {
				ms = append(ms, m.(Matcher))
			}
			r.matcherSets = append(r.matcherSets, ms)
		}
		mods, err := ctx.LoadModule(r, "HandlersRaw")
		if err != nil {
			return fmt.Errorf("routes[%d]: loading handlers: %w", i, err)
		}
		r.handlers = nil
		for _, m := range mods.([]any) {
			r.handlers = append(r.handlers, m.(Handler))
		}
		switch len(r.handlers) {
		case 0:
			return fmt.Errorf("routes[%d]: no handler", i)
		case 1:
		default:
			return fmt.Errorf("routes[%d]: %d handlers: a route has exactly one (proxy and echo end the association; handler chains are not supported)", i, len(r.handlers))
		}
	}
	if len(s.Routes) == 0 {
		return errors.New("routes: none: the first route needs a handler")
	}
	return nil
}

// parseListenAddress accepts sctp, sctp4 and sctp6 addresses in Caddy's
// namespace or inside one.
func parseListenAddress(addr string) (caddy.NetworkAddress, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return na, err
	}
	network := na.Network
	if network == nsnetwork.Network {
		a, err := nsnetwork.ParseAddress(addr)
		if err != nil {
			return na, err
		}
		network = a.Network
	}
	if !isSCTP(network) {
		return na, fmt.Errorf("address %q: network %q is not SCTP: want sctp/<host>:<port> or netns/<namespace>/sctp/<host>:<port> (or sctp4, sctp6)", addr, network)
	}
	return na, nil
}

func isSCTP(network string) bool {
	switch strings.ToLower(network) {
	case "sctp", "sctp4", "sctp6":
		return true
	}
	return false
}

// Start listens on every server's addresses and starts accepting.
func (a *App) Start() error {
	for _, s := range a.Servers {
		for _, na := range s.addrs {
			lns, err := na.ListenAll(a.ctx, net.ListenConfig{})
			if err != nil {
				return fmt.Errorf("server %q: %w", s.name, err)
			}
			for _, h := range lns {
				ln, ok := h.(Listener)
				if !ok {
					if c, ok := h.(interface{ Close() error }); ok {
						_ = c.Close()
					}
					return fmt.Errorf("server %q: address %s: got a %T, not an SCTP listener", s.name, na, h)
				}
				a.listeners = append(a.listeners, ln)
				go s.serve(ln)
			}
		}
	}
	return nil
}

// Stop closes the listeners. Associations already accepted keep running
// until they end, so a reload does not cut them.
func (a *App) Stop() error {
	for _, ln := range a.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			a.logger.Error("closing listener", zap.Stringer("address", ln.Addr()), zap.Error(err))
		}
	}
	a.listeners = nil
	return nil
}

// serve accepts associations until ln is closed.
func (s *Server) serve(ln Listener) {
	log := s.logger.With(zap.Stringer("local", ln.Addr()))
	log.Debug("accepting")
	delay := time.Duration(0)
	for {
		c, err := ln.AcceptConn(context.Background())
		if errors.Is(err, net.ErrClosed) {
			log.Debug("listener closed")
			return
		}
		if err != nil {
			// Out of descriptors or memory: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			log.Error("accepting an association", zap.Error(err), zap.Duration("retry_in", delay))
			time.Sleep(delay)
			continue
		}
		delay = 0
		nsenter.Busy() // idle threads left by a burst are ended after it
		go s.handle(c, log)
	}
}

func (s *Server) handle(c *sctpnet.Conn, log *zap.Logger) {
	log = log.With(zap.Stringer("remote", c.RemoteAddr()))
	log.Debug("association accepted")
	if err := c.SetMaxMessageSize(s.MaxMessageSize); err != nil {
		log.Warn("raising the send buffer for max_message_size: larger messages will abort the association",
			zap.Int("max_message_size", s.MaxMessageSize), zap.Error(err))
	}
	if err := s.tune(c); err != nil {
		log.Warn("tuning the association", zap.Error(err))
	}
	a := &Association{Conn: c}
	a.entry = track(s.name, a)
	h, err := s.route(a)
	if err != nil {
		_ = c.Abort()
		a.entry.end(true)
		log.Debug("association not routed: aborted", zap.Error(err))
		return
	}
	if ah, ok := h.(AssociationHandler); ok {
		err = ah.HandleAssociation(a)
	} else {
		err = h.HandleSCTP(c)
	}
	_ = c.Close()
	a.entry.end(err != nil)
	if errors.Is(err, sctpnet.ErrMessageTooLarge) {
		log.Warn("message larger than max_message_size: association aborted",
			zap.Int("max_message_size", s.MaxMessageSize), zap.Error(err))
		return
	}
	log.Debug("association ended", zap.Error(err))
}

// errNoRoute is why an association that no route matches is aborted.
var errNoRoute = errors.New("no route matches")

// route picks the handler of the first route that matches a. A first
// message read for a matcher is held and given back to c for the handler.
func (s *Server) route(a *Association) (Handler, error) {
	defer a.release()
	for i, r := range s.Routes {
		ok, err := r.matches(a)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		if ok {
			return r.handlers[0], nil
		}
	}
	return nil, errNoRoute
}

// tune applies the server's tuning to an accepted association.
func (s *Server) tune(c *sctpnet.Conn) error {
	t := s.Tuning
	if t == nil {
		return nil
	}
	if err := c.Tune(t.protocol()); err != nil {
		return err
	}
	if t.NoDelay != nil {
		if err := c.SetNoDelay(*t.NoDelay); err != nil {
			return err
		}
	}
	if t.WriteBuffer > 0 {
		return c.SetWriteBuffer(t.WriteBuffer)
	}
	return nil
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
