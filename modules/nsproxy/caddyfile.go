package nsproxy

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/modules/l4proxy"
)

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens: the syntax
// of caddy-l4's proxy directive, unchanged, plus two options of its own.
// Syntax:
//
//	netns_proxy [<upstreams...>] {
//		# caddy-l4's proxy options
//		health_interval <duration>
//		health_port <int>
//		health_timeout <duration>
//		health_fall <int>
//		health_rise <int>
//		close_if_unhealthy
//
//		fail_duration <duration>
//		max_fails <int>
//		unhealthy_connection_count <int>
//
//		lb_policy <name> [<args...>]
//		lb_try_duration <duration>
//		lb_try_interval <duration>
//
//		proxy_protocol <v1|v2>
//
//		upstream [<addresses...>] {
//			dial <addresses...>
//			local_addr <ip[:port]...>
//			resolver_preference <ipv4_only|ipv6_only|ipv4_first|ipv6_first>
//			max_connections <int>
//			weight <int>
//			tls
//			tls_<option> ...
//		}
//		upstream <addresses...>
//
//		# netns_proxy's own
//		dial_timeout <duration>
//		proxy_protocol_netns
//		udp_quarantine <duration>
//		udp_quarantine_max <int>
//	}
//
// An address is netns/<namespace>/<network>/<ip>:<port> or
// [<network>/]<host>:<port>; placeholders are allowed. Several addresses
// in one upstream are all connected to, as caddy-l4 does (see
// Upstream.Dial).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	seg := d.NextSegment()
	toks := make([]caddyfile.Token, 0, len(seg))
	depth := 0
	for i := 0; i < len(seg); i++ {
		tok := seg[i]
		switch tok.Text {
		case "{":
			depth++
		case "}":
			depth--
		}
		if depth != 1 || i == 0 || seg[i-1].Line == tok.Line {
			toks = append(toks, tok)
			continue
		}
		args := 0
		for j := i + 1; j < len(seg) && seg[j].Line == tok.Line && seg[j].Text != "{" && seg[j].Text != "}"; j++ {
			args++
		}
		switch tok.Text {
		case "dial_timeout":
			if args != 1 {
				return d.Errf("dial_timeout: want one duration, have %d arguments", args)
			}
			v, err := caddy.ParseDuration(seg[i+1].Text)
			if err != nil {
				return d.Errf("dial_timeout: %v", err)
			}
			h.DialTimeout = caddy.Duration(v)
			i++
		case "udp_quarantine":
			if args != 1 {
				return d.Errf("udp_quarantine: want one duration, have %d arguments", args)
			}
			v, err := caddy.ParseDuration(seg[i+1].Text)
			if err != nil {
				return d.Errf("udp_quarantine: %v", err)
			}
			h.UDPQuarantine = caddy.Duration(v)
			i++
		case "udp_quarantine_max":
			if args != 1 {
				return d.Errf("udp_quarantine_max: want one number, have %d arguments", args)
			}
			v, err := strconv.Atoi(seg[i+1].Text)
			if err != nil {
				return d.Errf("udp_quarantine_max %q: not a number", seg[i+1].Text)
			}
			h.UDPQuarantineMax = v
			i++
		case "proxy_protocol_netns":
			if args != 0 {
				return d.Errf("proxy_protocol_netns takes no arguments")
			}
			h.ProxyProtocolNetns = true
		default:
			toks = append(toks, tok)
		}
	}
	var l4 l4proxy.Handler
	if err := l4.UnmarshalCaddyfile(caddyfile.NewDispenser(toks)); err != nil {
		return err
	}
	b, err := json.Marshal(&l4)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(h); err != nil {
		return d.Errf("netns_proxy: %v", err)
	}
	return nil
}
