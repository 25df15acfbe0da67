package l4sctp

import (
	"encoding/json"
	"strconv"

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
//		route {
//			<handler> [<args...>]
//		}
//	}
//
// The size is in bytes, or with a unit: 1MiB, 512KB.
func (s *Server) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for ok := true; ok; ok = d.NextArg() {
		s.Listen = append(s.Listen, d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
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
		if d.NextArg() {
			return d.Errf("route matchers are not supported yet: %q", d.Val())
		}
		r := new(Route)
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

var _ caddyfile.Unmarshaler = (*Server)(nil)
