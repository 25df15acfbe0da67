package address

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
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

// A namespace list is a listen address whose namespace part names several
// namespaces, separated by commas:
//
//	netns/ns1,ns2,ns3/tcp/:8000
//	netns//run/netns/a,/run/netns/b/udp/:53
//
// It is served like a set (one listener over all of them, on a constant
// number of goroutines) but its members are the namespaces named, not a
// pattern. Curly braces ({ns1,ns2}) cannot be used: caddy-l4 replaces
// placeholders in listen addresses and would erase them. A namespace whose
// name contains a comma cannot be in a list.

// IsList reports whether the address names a list of namespaces.
func (a Address) IsList() bool {
	return strings.ContainsRune(a.Namespace, ',') && !isPattern(a.Namespace)
}

// List returns the namespaces of a list address, each a bare name or an
// absolute path, without duplicates, in the order written.
func (a Address) List() ([]string, error) {
	return splitList(a.Namespace)
}

func splitList(ns string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(ns, ",") {
		if n == "" {
			return nil, fmt.Errorf("namespace list %q: empty element", ns)
		}
		if isPattern(n) {
			return nil, fmt.Errorf("namespace list %q: element %q is a pattern; a list names namespaces one by one", ns, n)
		}
		if err := checkNamespace(n); err != nil {
			return nil, fmt.Errorf("namespace list %q: %w", ns, err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
