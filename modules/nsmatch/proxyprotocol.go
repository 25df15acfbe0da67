package nsmatch

import (
	"net"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"
	"github.com/pires/go-proxyproto"

	"github.com/caddy-netns/caddy-netns/address"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func init() {
	caddy.RegisterModule(MatchProxyNetns{})
}

// PlaceholderProxyNetns is the namespace named by the NETNS TLV (type
// 0x30) of the PROXY protocol v2 header a connection came with, as
// HAProxy sends it (the namespace as written on its bind line); empty when
// there was none. caddy-l4's proxy_protocol handler must have read the
// header first.
const PlaceholderProxyNetns = "l4.proxy_protocol.netns"

// TLVTypeNetns is the PROXY protocol v2 TLV type of a namespace name.
const TLVTypeNetns proxyproto.PP2Type = 0x30

// caddy-l4's proxy_protocol handler keeps the connection it read the
// header from in this variable (l4proxyprotocol's connReplKey).
const proxyConnVar = "l4.proxy_protocol.conn"

// ProxyNetns returns the namespace name in the NETNS TLV of the PROXY
// header of h, and whether there was one.
func ProxyNetns(h *proxyproto.Header) (string, bool) {
	if h == nil {
		return "", false
	}
	tlvs, err := h.TLVs()
	if err != nil {
		return "", false
	}
	for _, t := range tlvs {
		if t.Type == TLVTypeNetns {
			return string(t.Value), true
		}
	}
	return "", false
}

// ProxyHeader finds the PROXY header a connection came with: the one
// caddy-l4's proxy_protocol handler read, or one under a wrapper
// (go-proxyproto's Conn, as Caddy's HTTP proxy_protocol listener wrapper
// makes).
func ProxyHeader(c net.Conn) *proxyproto.Header {
	if cx, ok := c.(*layer4.Connection); ok {
		if pc, ok := cx.GetVar(proxyConnVar).(interface{ ProxyHeader() *proxyproto.Header }); ok {
			return pc.ProxyHeader()
		}
	}
	var cur net.Conn = c
	for range 16 {
		switch v := cur.(type) {
		case interface{ ProxyHeader() *proxyproto.Header }:
			return v.ProxyHeader()
		case *layer4.Connection:
			cur = v.Conn
		case interface{ NetConn() net.Conn }:
			cur = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// MatchesNetns reports whether the namespace name got from a NETNS TLV is
// one of entries (names, absolute paths, or patterns with * and ?); a
// name and the path of the same name under /var/run/netns are the same
// entry (see address.MatchNamespace).
func MatchesNetns(got string, entries []string) bool {
	if got == "" {
		return false
	}
	gp, err := nsenter.Path(got)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if address.MatchNamespace(e, gp) {
			return true
		}
	}
	return false
}

// MatchProxyNetns matches connections by the namespace named in the NETNS
// TLV of their PROXY protocol v2 header (as HAProxy's bind ... namespace
// sends it), so that a chain of proxies keeps the namespace the client
// came from. The proxy_protocol handler must have read the header in an
// earlier route. Entries are as for the netns matcher: names under
// /var/run/netns, absolute paths, patterns with * or ?. Matching also
// sets {l4.proxy_protocol.netns}.
//
// JSON: "proxy_protocol_netns": ["tenant-*"]
type MatchProxyNetns []string

// CaddyModule returns the Caddy module information.
func (MatchProxyNetns) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.matchers.proxy_protocol_netns",
		New: func() caddy.Module { return new(MatchProxyNetns) },
	}
}

// Validate checks that every entry is a name or an absolute path.
func (m MatchProxyNetns) Validate() error {
	return ValidateEntries("proxy_protocol_netns", m)
}

// Match reports whether cx's PROXY header names one of the namespaces.
func (m MatchProxyNetns) Match(cx *layer4.Connection) (bool, error) {
	ns, _ := ProxyNetns(ProxyHeader(cx))
	cx.Replacer().Set(PlaceholderProxyNetns, ns)
	return MatchesNetns(ns, m), nil
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	proxy_protocol_netns <namespace> [<namespace>...]
func (m *MatchProxyNetns) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	entries, err := UnmarshalEntries(d)
	if err != nil {
		return err
	}
	*m = append(*m, entries...)
	return nil
}

// Interface guards
var (
	_ caddy.Validator       = MatchProxyNetns(nil)
	_ layer4.ConnMatcher    = MatchProxyNetns(nil)
	_ caddyfile.Unmarshaler = (*MatchProxyNetns)(nil)
)
