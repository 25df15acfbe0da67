package nsproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/mholt/caddy-l4/layer4"
	"github.com/pires/go-proxyproto"

	"github.com/caddy-netns/caddy-netns/modules/nsmatch"
)

// This file makes netns_proxy accept the config of caddy-l4's proxy
// (layer4.handlers.proxy) as it is: upstreams[].dial as an array, the
// upstream TLS options, proxy_protocol; only the addresses change to enter
// a namespace.

// upstreamCompat holds the options of caddy-l4's upstreams beyond dial.
type upstreamCompat struct {
	// TLS, when set, wraps the connection to the upstream in TLS, as
	// caddy-l4's proxy does. The server name defaults to the upstream's
	// host. Default: none (plain).
	TLS *reverseproxy.TLSConfig `json:"tls,omitempty"`

	// ResolverPreference is caddy-l4's address family preference for host
	// names: ipv4_only, ipv6_only, ipv4_first or ipv6_first. Hosts of
	// netns addresses are IP addresses, so it only checks the value.
	// Default: empty.
	ResolverPreference string `json:"resolver_preference,omitempty"`

	// LocalAddrs are source addresses, <ip> or <ip>:<port>, to bind the
	// upstream socket to before it connects, as caddy-l4's local_address:
	// those of the destination's family are tried in order until a
	// connect succeeds; when none is of that family (or all are empty
	// after placeholders are replaced) the kernel picks. For a netns
	// upstream the addresses are those of the upstream's namespace, where
	// the socket is made. Placeholders are allowed. Default: none (the
	// kernel picks).
	LocalAddrs []string `json:"local_address,omitempty"`

	tlsConfig *tls.Config
	locals    []string   // LocalAddrs with known placeholders replaced
	localsSet []net.Addr // for a static target and locals without placeholders
	localsDyn bool       // locals have placeholders
}

// handlerCompat holds the handler options of caddy-l4's proxy beyond
// upstreams, load balancing and health checks.
type handlerCompat struct {
	// ProxyProtocol sends a PROXY protocol header, v1 or v2, to the
	// upstream before any data, with the client's address as the source,
	// as caddy-l4's proxy does (inside TLS when the upstream has tls).
	// Default: none.
	ProxyProtocol string `json:"proxy_protocol,omitempty"`

	// ProxyProtocolNetns adds a namespace to a v2 header as a NETNS TLV
	// (type 0x30), as HAProxy does: the one named by the PROXY header the
	// connection came with, if any ({l4.proxy_protocol.netns}, so a chain
	// of proxies keeps the origin), else the one it arrived in
	// ({l4.netns.name}). Default: false.
	ProxyProtocolNetns bool `json:"proxy_protocol_netns,omitempty"`
}

// UnmarshalJSON takes dial as a string or, as caddy-l4 writes it, an
// array of addresses. Unknown fields are refused, as Caddy does.
func (u *Upstream) UnmarshalJSON(b []byte) error {
	type plain Upstream
	var aux struct {
		*plain
		Dial json.RawMessage `json:"dial,omitempty"`
	}
	aux.plain = (*plain)(u)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	dial := bytes.TrimSpace(aux.Dial)
	u.Dial, u.dialMore = "", nil
	switch {
	case len(dial) == 0 || string(dial) == "null":
	case dial[0] == '[':
		var list []string
		if err := json.Unmarshal(dial, &list); err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		if len(list) > 0 {
			u.Dial, u.dialMore = list[0], list[1:]
		}
		for i, a := range list {
			if a == "" {
				return fmt.Errorf("dial[%d]: empty address", i)
			}
		}
	default:
		if err := json.Unmarshal(dial, &u.Dial); err != nil {
			return fmt.Errorf("dial: %w", err)
		}
	}
	return nil
}

// MarshalJSON writes dial as a string, or an array when it has several
// addresses.
func (u *Upstream) MarshalJSON() ([]byte, error) {
	type plain Upstream
	if len(u.dialMore) == 0 {
		return json.Marshal((*plain)(u))
	}
	return json.Marshal(struct {
		Dial []string `json:"dial"`
		*plain
	}{append([]string{u.Dial}, u.dialMore...), (*plain)(u)})
}

// provisionCompat checks the caddy-l4 options and prepares the upstreams'
// TLS configs.
func (h *Handler) provisionCompat(ctx caddy.Context) error {
	switch h.ProxyProtocol {
	case "", "v1", "v2":
	default:
		return fmt.Errorf("proxy_protocol %q: want v1 or v2", h.ProxyProtocol)
	}
	if h.ProxyProtocolNetns && h.ProxyProtocol != "v2" {
		return fmt.Errorf("proxy_protocol_netns: needs proxy_protocol v2, have %q", h.ProxyProtocol)
	}
	for i, u := range h.Upstreams {
		if u == nil {
			continue
		}
		switch u.ResolverPreference {
		case "", "ipv4_only", "ipv6_only", "ipv4_first", "ipv6_first":
		default:
			return fmt.Errorf("upstreams[%d]: resolver_preference %q: want ipv4_only, ipv6_only, ipv4_first or ipv6_first", i, u.ResolverPreference)
		}
		if err := u.provisionLocals(); err != nil {
			return fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		if u.TLS != nil {
			cfg, err := u.TLS.MakeTLSClientConfig(ctx)
			if err != nil {
				return fmt.Errorf("upstreams[%d]: tls: %w", i, err)
			}
			if cfg == nil {
				cfg = new(tls.Config)
			}
			u.tlsConfig = cfg
		}
	}
	return nil
}

// wrapUpstream puts TLS and the PROXY header on a new upstream
// connection, in caddy-l4's order.
func (h *Handler) wrapUpstream(cx *layer4.Connection, u *Upstream, t *target, up net.Conn) (net.Conn, error) {
	if u.tlsConfig != nil {
		timeout := time.Duration(h.DialTimeout)
		if u.TLS.HandshakeTimeout > 0 {
			timeout = time.Duration(u.TLS.HandshakeTimeout)
		}
		ctx, cancel := context.WithTimeout(h.ctx, timeout)
		defer cancel()
		cfg := u.tlsConfig.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(t.hostport)
			cfg.ServerName, _, _ = strings.Cut(host, "%")
		} else if strings.Contains(cfg.ServerName, "{") {
			cfg.ServerName = cx.Replacer().ReplaceAll(cfg.ServerName, "")
		}
		tc := tls.Client(up, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("upstream %s: TLS handshake: %w", t, err)
		}
		up = tc
	}
	if h.ProxyProtocol != "" {
		v := byte(1)
		if h.ProxyProtocol == "v2" {
			v = 2
		}
		hdr := proxyproto.HeaderProxyFromAddrs(v, cx.RemoteAddr(), cx.LocalAddr())
		if h.ProxyProtocolNetns {
			// The origin namespace a received PROXY header named, as
			// HAProxy forwards it; else the one the connection arrived in.
			ns, _ := nsmatch.ProxyNetns(nsmatch.ProxyHeader(cx))
			if ns == "" {
				if a, err := nsmatch.Of(cx); err == nil {
					ns = a.Name
				}
			}
			if ns != "" {
				if err := hdr.SetTLVs([]proxyproto.TLV{{Type: nsmatch.TLVTypeNetns, Value: []byte(ns)}}); err != nil {
					return nil, fmt.Errorf("upstream %s: NETNS TLV: %w", t, err)
				}
			}
		}
		if _, err := hdr.WriteTo(up); err != nil {
			return nil, fmt.Errorf("upstream %s: PROXY header: %w", t, err)
		}
	}
	return up, nil
}

// provisionLocals checks local_address and replaces its known
// placeholders.
func (u *Upstream) provisionLocals() error {
	repl := caddy.NewReplacer()
	u.locals = u.locals[:0]
	u.localsDyn = false
	for _, la := range u.LocalAddrs {
		la = strings.TrimSpace(repl.ReplaceKnown(la, ""))
		if strings.Contains(la, "{") {
			u.localsDyn = true
		} else if la != "" {
			if _, err := parseLocal(la); err != nil {
				return fmt.Errorf("local_address %q: %w", la, err)
			}
		}
		u.locals = append(u.locals, la)
	}
	return nil
}

// parseLocal parses a local address, <ip> or <ip>:<port>.
func parseLocal(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, errors.New("want <ip> or <ip>:<port>")
	}
	return netip.AddrPortFrom(ip, 0), nil
}

// localsFor returns the local addresses to bind to when dialing t: those
// of t's family, in order (all of them when the family is not known
// before resolving a host name: the dialer then only takes addresses of
// the local address's family). repl replaces placeholders; nil when the
// locals have none.
func (u *Upstream) localsFor(t *target, repl *caddy.Replacer) []net.Addr {
	fam := 0
	switch {
	case strings.HasSuffix(t.network, "4"):
		fam = 4
	case strings.HasSuffix(t.network, "6"):
		fam = 6
	default:
		host, _, _ := net.SplitHostPort(t.hostport)
		if ip, err := netip.ParseAddr(host); err == nil {
			fam = 6
			if ip.Unmap().Is4() {
				fam = 4
			}
		}
	}
	var out []net.Addr
	for _, la := range u.locals {
		if repl != nil && strings.Contains(la, "{") {
			la = strings.TrimSpace(repl.ReplaceAll(la, ""))
		}
		if la == "" {
			continue
		}
		ap, err := parseLocal(la)
		if err != nil {
			continue // a placeholder gave no address; as caddy-l4, skipped
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if (fam == 4 && !ap.Addr().Is4()) || (fam == 6 && ap.Addr().Is4()) {
			continue
		}
		if isUDP(t.network) {
			out = append(out, net.UDPAddrFromAddrPort(ap))
		} else {
			out = append(out, net.TCPAddrFromAddrPort(ap))
		}
	}
	return out
}

// locals returns the local addresses to bind the candidate's connection
// to; none unless local_address is set.
func (c *cand) locals(cx *layer4.Connection) []net.Addr {
	u := c.u
	switch {
	case len(u.locals) == 0:
		return nil
	case c.t == u.target && !u.localsDyn:
		return u.localsSet
	case u.localsDyn:
		return u.localsFor(c.t, cx.Replacer())
	default:
		return u.localsFor(c.t, nil)
	}
}
