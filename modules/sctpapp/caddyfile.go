package sctpapp

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("sctp", parseApp)
}

// parseApp sets up the sctp app from the global option, as caddy-l4's
// layer4 option does. Syntax:
//
//	{
//		sctp {
//			# srv0
//			<addresses...> {
//				route {
//					<handler> [<args...>]
//				}
//			}
//			# srv1
//			<addresses...> {
//				...
//			}
//		}
//	}
//
// Several sctp blocks are combined.
func parseApp(d *caddyfile.Dispenser, existing any) (any, error) {
	app := &App{Servers: map[string]*Server{}}
	if existing != nil {
		prev, ok := existing.(httpcaddyfile.App)
		if !ok {
			return nil, d.Errf("existing sctp config of unexpected type %T", existing)
		}
		if err := json.Unmarshal(prev.Value, app); err != nil {
			return nil, d.Errf("parsing existing sctp config: %v", err)
		}
	}
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	i := len(app.Servers)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		s := new(Server)
		if err := s.UnmarshalCaddyfile(d); err != nil {
			return nil, err
		}
		app.Servers["srv"+strconv.Itoa(i)] = s
		i++
	}
	return httpcaddyfile.App{Name: "sctp", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up a server from Caddyfile tokens: the current
// token and the rest of the line are listen addresses. Syntax:
//
//	<addresses...> {
//		@<name> <matcher> <args...>
//		@<name> {
//			<matcher> <args...>
//		}
//		max_message_size <size>
//		tuning {
//			rto_initial <duration>
//			rto_min <duration>
//			rto_max <duration>
//			heartbeat_interval <duration>|off
//			path_max_retransmissions <n>
//			association_max_retransmissions <n>
//			sack_delay <duration>
//			sack_frequency <n>
//			nodelay on|off
//			write_buffer <size>
//		}
//		route [@<name>...] {
//			<handler> [<args...>]
//		}
//	}
//
// A route with named matchers takes an association when any one of them
// matches (all matchers of a block must match); matchers are netns,
// remote_ip, local_port and ppid. The size is in bytes, or with a unit: 1MiB, 512KB.
func (s *Server) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for ok := true; ok; ok = d.NextArg() {
		s.Listen = append(s.Listen, d.Val())
	}
	named := map[string]caddy.ModuleMap{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if strings.HasPrefix(d.Val(), "@") {
			name := d.Val()
			if _, dup := named[name]; dup {
				return d.Errf("matcher %s defined twice", name)
			}
			set := caddy.ModuleMap{}
			if d.NextArg() { // @name <matcher> <args...>
				if err := parseMatcher(d, set); err != nil {
					return err
				}
			} else { // @name { <matcher> <args...> ... }
				for mn := d.Nesting(); d.NextBlock(mn); {
					if err := parseMatcher(d, set); err != nil {
						return err
					}
				}
			}
			if len(set) == 0 {
				return d.Errf("matcher %s: no matchers", name)
			}
			named[name] = set
			continue
		}
		if d.Val() == "max_message_size" {
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(d.Val())
			if err != nil || n == 0 || n > MaxMessageSizeLimit {
				return d.Errf("max_message_size %q: want a size from 1 byte to 1GiB, e.g. 1MiB", d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			s.MaxMessageSize = int(n)
			continue
		}
		if d.Val() == "tuning" {
			t, err := unmarshalTuning(d)
			if err != nil {
				return err
			}
			s.Tuning = t
			continue
		}
		if d.Val() != "route" {
			return d.Errf("unrecognized sctp server option %q (want route, max_message_size or tuning)", d.Val())
		}
		r := new(Route)
		for d.NextArg() {
			set, ok := named[d.Val()]
			if !ok {
				return d.Errf("route: matcher %q is not defined before it (want @name, defined with @name <matcher> <args...>)", d.Val())
			}
			r.MatcherSetsRaw = append(r.MatcherSetsRaw, set)
		}
		for rn := d.Nesting(); d.NextBlock(rn); {
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "sctp.handlers."+name)
			if err != nil {
				return err
			}
			if _, ok := unm.(Handler); !ok {
				return d.Errf("module %q is not an sctp handler", name)
			}
			r.HandlersRaw = append(r.HandlersRaw, caddyconfig.JSONModuleObject(unm, "handler", name, nil))
		}
		s.Routes = append(s.Routes, r)
	}
	return nil
}

// parseMatcher adds the matcher on the current line to set. Syntax:
//
//	netns <namespaces...>
//	remote_ip <addresses or CIDR ranges...>
//	local_port <ports...>
//	ppid <PPIDs...>
func parseMatcher(d *caddyfile.Dispenser, set caddy.ModuleMap) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	if _, dup := set[name]; dup {
		return d.Errf("matcher %q twice in one set", name)
	}
	var v any
	switch name {
	case "netns":
		v = args
	case "remote_ip":
		v = MatchRemoteIP{Ranges: args}
	case "local_port", "ppid":
		var nums []uint64
		for _, a := range args {
			bits := 16
			if name == "ppid" {
				bits = 32
			}
			n, err := strconv.ParseUint(a, 10, bits)
			if err != nil {
				return d.Errf("%s %q: want a number below %d", name, a, uint64(1)<<bits)
			}
			nums = append(nums, n)
		}
		v = nums
	default:
		return d.Errf("unrecognized sctp matcher %q (want netns, remote_ip, local_port or ppid)", name)
	}
	set[name] = caddyconfig.JSON(v, nil)
	return nil
}

var _ caddyfile.Unmarshaler = (*Server)(nil)
