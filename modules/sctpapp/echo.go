package sctpapp

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-netns/caddy-netns/kernel/sctpnet"
	"github.com/caddy-netns/caddy-netns/kernel/sctprelay"
)

func init() {
	caddy.RegisterModule(new(Echo))
}

// Echo sends every message back on the stream it came on, with the same
// payload protocol identifier and unordered flag.
type Echo struct{}

// CaddyModule returns the Caddy module information.
func (*Echo) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "sctp.handlers.echo",
		New: func() caddy.Module { return new(Echo) },
	}
}

// HandleSCTP echoes messages until the association ends.
func (*Echo) HandleSCTP(c *sctpnet.Conn) error { return sctprelay.Echo(c) }

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	echo
func (*Echo) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("echo takes no options")
	}
	return nil
}

// Interface guards
var (
	_ Handler               = (*Echo)(nil)
	_ caddyfile.Unmarshaler = (*Echo)(nil)
)
