package address

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// A namespace set is a listen address whose namespace part is a pattern:
//
//	netns/*/tcp/:8000                       every namespace under /var/run/netns
//	netns/tenant-*/udp/:53                  those whose name matches the glob
//	netns//var/run/docker/netns/*/tcp/:80   every namespace file in another directory
//
// The wildcards are * (any run of characters) and ? (one character), in the
// last path element only; the directory must be literal. Character classes
// ([...]) cannot be used: Caddy's address parser rejects brackets there.

// IsSet reports whether the address names a set of namespaces (its
// namespace part contains * or ?) rather than one namespace.
func (a Address) IsSet() bool { return isPattern(a.Namespace) }

func isPattern(ns string) bool { return strings.ContainsAny(ns, "*?") }

// SetPattern splits the namespace pattern of a set address into the
// directory it watches and the glob its entries must match.
func (a Address) SetPattern() (dir, glob string, err error) {
	return splitPattern(a.Namespace)
}

func splitPattern(ns string) (dir, glob string, err error) {
	if strings.ContainsAny(ns, `[]\`) {
		return "", "", fmt.Errorf("namespace pattern %q: only the wildcards * and ? are supported", ns)
	}
	if filepath.IsAbs(ns) {
		dir, glob = filepath.Split(filepath.Clean(ns))
		dir = filepath.Clean(dir)
		if isPattern(dir) {
			return "", "", fmt.Errorf("namespace pattern %q: wildcards are allowed in the last path element only", ns)
		}
	} else {
		if strings.ContainsRune(ns, '/') {
			return "", "", fmt.Errorf("namespace pattern %q: want a name pattern under %s or an absolute path", ns, nsenter.RunDir)
		}
		dir, glob = filepath.Clean(nsenter.RunDir), ns
	}
	if glob == "" || glob == "." || glob == ".." {
		return "", "", errors.New("empty namespace pattern")
	}
	if _, err := path.Match(glob, ""); err != nil {
		return "", "", fmt.Errorf("namespace pattern %q: %w", ns, err)
	}
	return dir, glob, nil
}

// MemberSpec is how a set names one of its members to Listen and in the
// pool (and so in Sockets and the {l4.netns.name} placeholder): a bare name
// for entries of /var/run/netns, a path otherwise.
func MemberSpec(dir, name string) string {
	if dir == filepath.Clean(nsenter.RunDir) {
		return name
	}
	return filepath.Join(dir, name)
}
