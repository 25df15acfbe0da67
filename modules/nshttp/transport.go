package nshttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/caddy-netns/caddy-netns/allow"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

func init() {
	caddy.RegisterModule(Transport{})
}

// Transport is Caddy's HTTP transport (all of its options, same JSON and
// Caddyfile) whose upstreams may live in other network namespaces. An
// upstream dial address netns/<namespace>/<network>/<ip>:<port> (network
// tcp, tcp4 or tcp6; the host an IP address, since a name would be
// resolved outside the namespace) is dialed from a socket created inside
// that namespace; any other address from Caddy's own namespace. The
// namespace may be a placeholder, as in
// netns/{http.request.netns.name}/tcp/10.0.0.1:80, to reach the backend in
// the namespace each request arrived in.
//
// A fixed namespace that does not exist or that the allow list refuses
// fails the config load; one from a placeholder fails that request (502),
// and the error logged names it. A namespace from a placeholder (a value a
// client may control, such as a request header) must be named by the allow
// list: Caddy's own namespace is not excepted there. Nothing is ever dialed in Caddy's own
// namespace instead. Connections are pooled per namespace identity.
//
// network_proxy, local_address, resolvers and HTTP/3 are not supported.
type Transport struct {
	reverseproxy.HTTPTransport

	// ProxyProtocolNetns adds, when proxy_protocol is v2, a namespace to
	// the PROXY header as a NETNS TLV (type 0x30), as HAProxy does: the one
	// named by the PROXY header the request's connection came with, if any
	// ({http.request.proxy_protocol.netns}, so a chain of proxies keeps the
	// origin), else the one the request arrived in
	// ({http.request.netns.name}). Connections are then pooled per that
	// namespace too. Default: false.
	ProxyProtocolNetns bool `json:"proxy_protocol_netns,omitempty"`

	policy *allow.Policy
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.netns",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision checks the options and the fixed upstream namespaces of the
// reverse_proxy handler it belongs to, builds Caddy's HTTP transport and
// takes over its dialing.
func (t *Transport) Provision(ctx caddy.Context) error {
	t.logger = ctx.Logger()
	switch {
	case t.ForwardProxyURL != "" || len(t.NetworkProxyRaw) > 0:
		return errors.New("network_proxy: not supported by the netns transport (the proxy would be dialed from Caddy's own namespace)")
	case t.LocalAddress != "":
		return fmt.Errorf("local_address %q: not supported by the netns transport", t.LocalAddress)
	case t.Resolver != nil:
		return errors.New("resolvers: not supported by the netns transport (upstream hosts in namespaces must be IP addresses)")
	case slices.Contains(t.Versions, "3"):
		return errors.New("versions: HTTP/3 is not supported by the netns transport")
	case t.ProxyProtocolNetns && t.ProxyProtocol != "v2":
		return fmt.Errorf("proxy_protocol_netns: needs proxy_protocol v2, have %q", t.ProxyProtocol)
	}
	policy, err := nsnetwork.PolicyFor(ctx)
	if err != nil {
		return err
	}
	t.policy = policy
	if err := t.checkUpstreams(ctx); err != nil {
		return err
	}
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	rt := t.Transport
	rt.Proxy = nil
	rt.DialContext = t.dialContext
	rt.DialTLSContext = nil
	if t.TLS != nil {
		rt.DialTLSContext = t.dialTLSContext
	}
	track(ctx)
	return nil
}

// checkUpstreams opens, under the allow list, each fixed upstream
// namespace of the reverse_proxy handler being provisioned.
func (t *Transport) checkUpstreams(ctx caddy.Context) error {
	var h *reverseproxy.Handler
	for _, m := range ctx.Modules() {
		if p, ok := m.(*reverseproxy.Handler); ok {
			h = p
		}
	}
	if h == nil {
		return nil
	}
	repl := caddy.NewReplacer()
	for i, u := range h.Upstreams {
		if u == nil {
			continue
		}
		dial := repl.ReplaceKnown(u.Dial, "")
		if strings.Contains(dial, "{") {
			continue
		}
		tg, err := parseDial(dial)
		if err != nil {
			return fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		if tg.ns == "" {
			continue
		}
		ns, err := t.policy.Open(tg.ns)
		if err != nil {
			return fmt.Errorf("upstreams[%d]: upstream %q: %w", i, u.Dial, err)
		}
		ns.Close()
	}
	return nil
}

type dialKey struct{}

// dialReq is what the dial functions learn from the request: the
// resolved upstream and the pool key it was sent under.
type dialReq struct {
	t      *target
	key    string
	client string // PROXY protocol source, host:port
	netns  string // arrival namespace for the NETNS TLV
}

// RoundTrip resolves the request's upstream (placeholders, namespace
// identity, allow list) and sends it through Caddy's HTTP transport under
// a URL host that keys the connection pool by that identity.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tg, err := t.resolve(req)
	if err != nil {
		return nil, reverseproxy.NewDialError(err)
	}
	dr := &dialReq{t: tg}
	pool := ""
	if t.ProxyProtocol != "" {
		if info, ok := caddyhttp.GetVar(req.Context(), proxyProtocolInfoVarKey).(reverseproxy.ProxyProtocolInfo); ok {
			dr.client = info.AddrPort.String()
			pool = dr.client
		}
		if t.ProxyProtocolNetns {
			ns, _ := ProxyNetns(req)
			if ns == "" {
				a, err := Arrival(req)
				if err != nil && !errors.Is(err, ErrNoConn) {
					return nil, reverseproxy.NewDialError(fmt.Errorf("upstream %q: NETNS TLV: %w", tg.dial, err))
				}
				ns = a.Name
			}
			dr.netns = ns
			pool += "@" + ns
		}
	}
	dr.key = tg.key(pool)
	r2 := req.WithContext(context.WithValue(req.Context(), dialKey{}, dr))
	u := *req.URL
	u.Host = dr.key
	r2.URL = &u
	switch {
	case r2.Host == "":
		r2.Host = req.URL.Host
	case tg.ns != "" && strings.Contains(r2.Host, "/"):
		// {upstream_hostport} of a netns address, which Caddy sets as
		// the Host of requests to TLS upstreams: send <ip>:<port>, as
		// for a plain address.
		r2.Host = tg.hostport()
	}
	return t.HTTPTransport.RoundTrip(r2)
}

// Caddy's context variable names, from reverseproxy/hosts.go.
const (
	proxyProtocolInfoVarKey = "reverse_proxy.proxy_protocol_info"
	tlsH1OnlyVarKey         = "reverse_proxy.tls_h1_only"
)

// resolve finds the request's upstream: its dial address with the
// request's placeholders replaced, and the identity of its namespace as
// the allow list lets it be opened now.
func (t *Transport) resolve(req *http.Request) (*target, error) {
	di, ok := reverseproxy.GetDialInfo(req.Context())
	if !ok {
		return nil, errors.New("netns transport: request has no upstream")
	}
	dial := di.String()
	if di.Upstream != nil {
		dial = di.Upstream.Dial
	}
	placeholders := strings.Contains(dial, "{")
	if placeholders {
		if strings.Contains(dial, "{"+PlaceholderName[:len("http.request.netns.")]) {
			if _, err := Arrival(req); err != nil {
				return nil, fmt.Errorf("upstream %q: %w", dial, err)
			}
		}
		if strings.Contains(dial, "{"+PlaceholderProxyNetns+"}") {
			if ns, ok := ProxyNetns(req); !ok || ns == "" {
				return nil, fmt.Errorf("upstream %q: the connection's PROXY header has no NETNS TLV", dial)
			}
		}
		if repl, ok := req.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			dial = repl.ReplaceAll(dial, "")
		}
	}
	tg, err := parseDial(dial)
	if err != nil {
		return nil, err
	}
	if tg.ns != "" {
		ns, err := t.policy.Open(tg.ns)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", dial, err)
		}
		tg.id = ns.ID
		ns.Close()
	}
	return tg, nil
}

// dialContext connects to the upstream the request was resolved to. The
// address must be the pool key that request was sent under, so that a
// connection is never dialed for one upstream and pooled for another.
func (t *Transport) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	dr, ok := ctx.Value(dialKey{}).(*dialReq)
	if !ok || dr.key != addr {
		return nil, reverseproxy.NewDialError(fmt.Errorf("netns transport: dial %s %s: no upstream resolved for it", network, addr))
	}
	conn, err := t.dial(ctx, dr.t)
	if err != nil {
		return nil, reverseproxy.NewDialError(err)
	}
	if t.ProxyProtocol != "" {
		if err := writeProxyHeader(conn, t.ProxyProtocol, dr); err != nil {
			conn.Close()
			return nil, reverseproxy.NewDialError(fmt.Errorf("upstream %q: PROXY header: %w", dr.t.dial, err))
		}
	}
	if tc, ok := conn.(*net.TCPConn); ok && (t.ReadTimeout > 0 || t.WriteTimeout > 0) {
		conn = &rwTimeoutConn{TCPConn: tc, read: time.Duration(t.ReadTimeout), write: time.Duration(t.WriteTimeout)}
	}
	return conn, nil
}

// dial makes the connection: inside the namespace only the socket is
// created there (nsenter.Dial), the connect is waited for in the
// netpoller. The namespace is opened again under the allow list and must
// still be the one the request was resolved to.
func (t *Transport) dial(ctx context.Context, tg *target) (net.Conn, error) {
	if d := time.Duration(t.DialTimeout); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ka := t.keepAlive()
	if tg.ns == "" {
		d := net.Dialer{KeepAliveConfig: ka, KeepAlive: ka.Interval}
		if !ka.Enable {
			d.KeepAlive = -1
		}
		return d.DialContext(ctx, tg.network, tg.hostport())
	}
	ns, err := t.policy.Open(tg.ns)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", tg.dial, err)
	}
	defer ns.Close()
	if ns.ID != tg.id {
		return nil, fmt.Errorf("upstream %q: namespace %q was replaced (was %s, now %s)", tg.dial, tg.ns, tg.id, ns.ID)
	}
	conn, err := nsenter.Dialer{KeepAlive: ka}.Dial(ctx, ns, tg.network, tg.hostport())
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", tg.dial, err)
	}
	return conn, nil
}

func (t *Transport) keepAlive() net.KeepAliveConfig {
	if t.KeepAlive == nil {
		return net.KeepAliveConfig{}
	}
	iv := time.Duration(t.KeepAlive.ProbeInterval)
	return net.KeepAliveConfig{Enable: iv > 0, Interval: iv}
}

// dialTLSContext is dialContext with a TLS handshake on top. The server
// name defaults to the upstream's IP address (as Go's transport would take
// it from the URL, which here is the pool key).
func (t *Transport) dialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := t.dialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	dr := ctx.Value(dialKey{}).(*dialReq)
	cfg := t.Transport.TLSClientConfig.Clone()
	switch {
	case cfg.ServerName == "":
		cfg.ServerName, _, _ = strings.Cut(dr.t.host, "%")
	case strings.Contains(cfg.ServerName, "{"):
		if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			cfg.ServerName = repl.ReplaceAll(cfg.ServerName, "")
		}
	}
	if caddyhttp.GetVar(ctx, tlsH1OnlyVarKey) == true {
		cfg.NextProtos = nil
	}
	tc := tls.Client(conn, cfg)
	if d := t.Transport.TLSHandshakeTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		return nil, fmt.Errorf("upstream %q: TLS handshake: %w", dr.t.dial, err)
	}
	return tc, nil
}

// OverrideHealthCheckScheme lets active health checks address an upstream
// in a namespace: Caddy builds their URL from the dial address, whose
// netns/<namespace>/<network>/ part is no URL host; the check is sent to
// <ip>:<port> and dialed as the upstream is.
func (t *Transport) OverrideHealthCheckScheme(base *url.URL, port string) {
	if h, p, err := net.SplitHostPort(base.Host); err == nil {
		if i := strings.LastIndexByte(h, '/'); i >= 0 {
			base.Host = net.JoinHostPort(h[i+1:], p)
		}
	}
	t.HTTPTransport.OverrideHealthCheckScheme(base, port)
}

// UnmarshalCaddyfile sets up the transport from Caddyfile tokens: every
// option of Caddy's http transport, and proxy_protocol_netns. Syntax:
//
//	transport netns {
//		<http transport options>
//		proxy_protocol_netns
//	}
func (t *Transport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	// Take our own option out of the block; the rest is Caddy's.
	d.Next()
	seg := d.NextSegment()
	toks := make([]caddyfile.Token, 0, len(seg))
	depth := 0
	for i, tok := range seg {
		switch tok.Text {
		case "{":
			depth++
		case "}":
			depth--
		}
		if depth == 1 && tok.Text == "proxy_protocol_netns" && seg[i-1].Line != tok.Line {
			if i+1 < len(seg) && seg[i+1].Line == tok.Line && seg[i+1].Text != "}" {
				return d.Errf("proxy_protocol_netns takes no arguments")
			}
			t.ProxyProtocolNetns = true
			continue
		}
		toks = append(toks, tok)
	}
	return t.HTTPTransport.UnmarshalCaddyfile(caddyfile.NewDispenser(toks))
}

// Interface guards
var (
	_ caddy.Provisioner                                = (*Transport)(nil)
	_ http.RoundTripper                                = (*Transport)(nil)
	_ caddy.CleanerUpper                               = (*Transport)(nil)
	_ caddyfile.Unmarshaler                            = (*Transport)(nil)
	_ reverseproxy.TLSTransport                        = (*Transport)(nil)
	_ reverseproxy.H2CTransport                        = (*Transport)(nil)
	_ reverseproxy.HealthCheckSchemeOverriderTransport = (*Transport)(nil)
	_ reverseproxy.ProxyProtocolTransport              = (*Transport)(nil)
)
