// Package allow is the allow list of network namespaces: which namespace
// files a config may open, under the process-wide ceiling
// CADDY_NETNS_ALLOW, decided on the (device, inode) of the file actually
// opened. It is Caddy-free; the netns app (modules/nspolicy) holds a
// config's list and modules/nsnetwork finds it for a config.
package allow

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// CeilingEnv names the environment variable that bounds, for the whole
// process, the namespaces any config may use. It takes the entries of an
// allow list separated by spaces or commas. A config's own allow list can
// narrow it but never widen it, and nothing sent to the admin API can
// change it.
const CeilingEnv = "CADDY_NETNS_ALLOW"

// ErrNotAllowed is wrapped by errors for namespaces an allow list refuses.
var ErrNotAllowed = errors.New("not allowed")

// List is a compiled allow list. A nil *List allows everything.
type List struct {
	source  string // where the list comes from, for errors
	raw     []string
	entries []entry
}

type entryKind int

const (
	kindName   entryKind = iota // a name or glob of names under nsenter.RunDir
	kindPath                    // an absolute path or glob of paths
	kindPrefix                  // an absolute directory: everything below it
)

type entry struct {
	kind    entryKind
	pattern string
}

// Compile checks and compiles the entries of an allow list. Each entry is
//
//   - a name, or a glob of names (ns1, tenant-*), for namespaces under
//     /var/run/netns;
//   - an absolute path, or a glob of paths where * does not cross a slash
//     (/proc/*/ns/net, /var/run/docker/netns/*);
//   - an absolute path ending in a slash (/var/run/docker/netns/): every
//     file below that directory.
//
// source says where the list comes from in errors.
func Compile(source string, allow []string) (*List, error) {
	l := &List{source: source, raw: allow}
	for i, s := range allow {
		e, err := compileEntry(s)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d %q: %w", source, i, s, err)
		}
		l.entries = append(l.entries, e)
	}
	return l, nil
}

// CheckEntry checks one entry of an allow list (see Compile).
func CheckEntry(s string) error {
	_, err := compileEntry(s)
	return err
}

func compileEntry(s string) (entry, error) {
	switch {
	case s == "":
		return entry{}, errors.New("empty")
	case !filepath.IsAbs(s) && strings.ContainsRune(s, '/'):
		return entry{}, errors.New("want a name, a glob of names, or an absolute path")
	case s == "." || s == "..":
		return entry{}, errors.New("not a valid name")
	}
	if _, err := path.Match(s, ""); err != nil {
		return entry{}, fmt.Errorf("bad glob pattern: %w", err)
	}
	switch {
	case !filepath.IsAbs(s):
		return entry{kind: kindName, pattern: s}, nil
	case strings.HasSuffix(s, "/"):
		return entry{kind: kindPrefix, pattern: withSlash(filepath.Clean(s))}, nil
	}
	return entry{kind: kindPath, pattern: filepath.Clean(s)}, nil
}

func withSlash(dir string) string {
	if strings.HasSuffix(dir, "/") {
		return dir
	}
	return dir + "/"
}

// Match reports whether the list allows the namespace file at p, an
// absolute, clean path. A path is also tried with the symbolic links of its
// directory resolved, so /run/netns/ns1 is allowed by the name ns1 where
// /var/run is a link to /run, and the other way round.
func (l *List) Match(p string) bool {
	if l == nil {
		return true
	}
	if l.match(p) {
		return true
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		if q := filepath.Join(dir, filepath.Base(p)); q != p {
			return l.match(q)
		}
	}
	return false
}

func (l *List) match(p string) bool {
	dir, base := filepath.Dir(p), filepath.Base(p)
	for _, e := range l.entries {
		switch e.kind {
		case kindName:
			if isRunDir(dir) {
				if ok, _ := path.Match(e.pattern, base); ok {
					return true
				}
			}
		case kindPath:
			if ok, _ := path.Match(e.pattern, p); ok {
				return true
			}
		case kindPrefix:
			if strings.HasPrefix(p, e.pattern) {
				return true
			}
		}
	}
	return false
}

// isRunDir reports whether dir is the directory of named namespaces,
// as written or with its symbolic links resolved.
func isRunDir(dir string) bool {
	run := filepath.Clean(nsenter.RunDir)
	if dir == run {
		return true
	}
	real, err := filepath.EvalSymlinks(run)
	return err == nil && dir == real
}

func (l *List) String() string {
	return l.source + " [" + strings.Join(l.raw, " ") + "]"
}

// Policy decides which namespaces one config may use: both its own allow
// list and the process's ceiling must allow a namespace. A nil *Policy, or
// one whose lists are nil, allows everything.
type Policy struct {
	config, ceiling *List
}

// New returns the policy of a config's allow list under the process's
// ceiling; config may be nil.
func New(config *List) (*Policy, error) {
	ceiling, err := Ceiling()
	if err != nil {
		return nil, err
	}
	return &Policy{config: config, ceiling: ceiling}, nil
}

var ceiling struct {
	sync.Mutex
	raw  string
	list *List
	err  error
}

// Ceiling returns the process-wide allow list from CADDY_NETNS_ALLOW, nil
// when the variable is unset or empty.
func Ceiling() (*List, error) {
	raw := os.Getenv(CeilingEnv)
	ceiling.Lock()
	defer ceiling.Unlock()
	if raw != ceiling.raw || (raw != "" && ceiling.list == nil && ceiling.err == nil) {
		ceiling.raw = raw
		ceiling.list, ceiling.err = nil, nil
		if f := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }); len(f) > 0 {
			ceiling.list, ceiling.err = Compile(CeilingEnv, f)
		}
	}
	return ceiling.list, ceiling.err
}

// Allows checks, without opening it, whether spec (a name under
// /var/run/netns or an absolute path) may be used. Caddy's own namespace
// is always allowed: any config reaches it with a plain address.
func (p *Policy) Allows(spec string) error {
	path, err := nsenter.Path(spec)
	if err != nil {
		return err
	}
	if err := p.refuse(path); err != nil {
		if isOwn(path) {
			return nil
		}
		return err
	}
	return nil
}

// Open opens the namespace spec names if the policy allows it. Every
// symbolic link followed from spec must lead to an allowed path too, and
// the decision is made on the very file that is then opened (see
// nsenter.OpenChecked). A namespace opened through the same path moments
// before is reused if the path still names it (nsenter.OpenShared); the
// policy decides again on the paths that first led to it.
func (p *Policy) Open(spec string) (*nsenter.Namespace, error) {
	if err := p.Allows(spec); err != nil {
		return nil, fmt.Errorf("namespace %q: %w", spec, err)
	}
	return nsenter.OpenShared(spec, p.check)
}

// check is the decision on the file actually found: its own namespace, or
// every path that led to it allowed.
func (p *Policy) check(paths []string, id nsenter.ID) error {
	for _, q := range paths {
		if err := p.refuse(q); err != nil {
			if own, oerr := nsenter.Current(); oerr == nil && own == id {
				return nil
			}
			if q != paths[0] {
				return fmt.Errorf("%s leads to %s: %w", paths[0], q, err)
			}
			return err
		}
	}
	return nil
}

func (p *Policy) refuse(path string) error {
	if p == nil {
		return nil
	}
	for _, l := range []*List{p.ceiling, p.config} {
		if !l.Match(path) {
			return fmt.Errorf("%s is %w by %s", path, ErrNotAllowed, l)
		}
	}
	return nil
}

// isOwn reports whether path is Caddy's own network namespace. It only
// stats the file.
func isOwn(path string) bool {
	own, err := nsenter.Current()
	if err != nil {
		return false
	}
	id, err := nsenter.StatID(path)
	return err == nil && id == own
}
