package nsmatch

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// The namespace matchers of this module and of modules/nshttp (netns and
// proxy_protocol_netns, for layer4 and for HTTP) all take the same list of
// entries: names under /var/run/netns, absolute paths of namespace files,
// or patterns with * or ?. The helpers below read, check and prepare such a
// list once for all of them.

// ReplaceGlobals replaces global placeholders (such as {env.*}) in entries,
// in place.
func ReplaceGlobals(entries []string) {
	repl := caddy.NewReplacer()
	for i, s := range entries {
		entries[i] = repl.ReplaceAll(s, "")
	}
}

// ValidateEntries checks that entries is not empty and that every entry is
// a name or an absolute path; matcher names the matcher in the error.
func ValidateEntries(matcher string, entries []string) error {
	if len(entries) == 0 {
		return fmt.Errorf("%s matcher: no namespaces", matcher)
	}
	for _, s := range entries {
		if _, err := nsenter.Path(s); err != nil {
			return fmt.Errorf("%s matcher: %w", matcher, err)
		}
	}
	return nil
}

// UnmarshalEntries reads a namespace matcher from Caddyfile tokens and
// returns its entries. Syntax:
//
//	<matcher> <namespace> [<namespace>...]
func UnmarshalEntries(d *caddyfile.Dispenser) ([]string, error) {
	_, name := d.Next(), d.Val()
	if d.CountRemainingArgs() == 0 {
		return nil, d.ArgErr()
	}
	var entries []string
	for d.NextArg() {
		if _, err := nsenter.Path(d.Val()); err != nil {
			return nil, d.Errf("%s: %v", name, err)
		}
		entries = append(entries, d.Val())
	}
	if d.NextBlock(d.Nesting()) {
		return nil, d.Errf("%s matcher: blocks are not supported", name)
	}
	return entries, nil
}

// IsAny reports whether the connection arrived in the namespace of one of
// entries (see Is).
func (a Arrival) IsAny(entries []string) bool {
	for _, s := range entries {
		if a.Is(s) {
			return true
		}
	}
	return false
}
