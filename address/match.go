package address

import (
	"path"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// MatchNamespace reports whether spec, a namespace as a config names it (a
// name under /var/run/netns, an absolute path, or a pattern with the
// wildcards * or ? as in set addresses), names the namespace file p (as
// nsenter.Path gives it). A name and the path of the same file are the same
// namespace. Only a spec with * or ? is a pattern: other characters that
// path.Match would read as syntax ([, \) stand for themselves. A spec that
// nsenter.Path refuses names nothing.
func MatchNamespace(spec, p string) bool {
	sp, err := nsenter.Path(spec)
	if err != nil {
		return false
	}
	if sp == p {
		return true
	}
	if !isPattern(spec) {
		return false
	}
	ok, _ := path.Match(sp, p)
	return ok
}
