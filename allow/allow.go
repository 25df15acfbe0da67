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
	pattern string // with /var/run spelled as what it links to (see canon)
	base    string // kindPath: the directory before the first glob
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
		return entry{kind: kindPrefix, pattern: withSlash(canon(filepath.Clean(s)))}, nil
	}
	p := canon(filepath.Clean(s))
	base := filepath.Dir(p)
	if i := strings.IndexAny(p, `*?[\`); i >= 0 {
		base = filepath.Dir(p[:i])
	}
	return entry{kind: kindPath, pattern: p, base: base}, nil
}

func withSlash(dir string) string {
	if strings.HasSuffix(dir, "/") {
		return dir
	}
	return dir + "/"
}

// varRun is what /var/run is a symbolic link to, "" if it is none.
var varRun = sync.OnceValue(func() string {
	r, err := filepath.EvalSymlinks("/var/run")
	if err != nil || r == "/var/run" {
		return ""
	}
	return r
})

// canon spells an absolute, clean path that starts with /var/run with what
// /var/run is a link to (/run on most systems), so that either spelling
// matches an entry written with the other. It is the only link resolved
// when a path is compared with the list.
func canon(p string) string {
	r := varRun()
	switch {
	case r == "":
		return p
	case p == "/var/run":
		return r
	case strings.HasPrefix(p, "/var/run/"):
		return r + p[len("/var/run"):]
	}
	return p
}

// Match reports whether the list allows the spelling p of a namespace
// file, an absolute, clean path: whether p is a name under /var/run/netns
// that the list names, or a path it names, as written. No symbolic link
// in p is resolved, except that /var/run and what it links to (/run) are
// the same. Whether the namespace actually opened is the one the list
// allows is decided by Holds.
func (l *List) Match(p string) bool {
	if l == nil {
		return true
	}
	return len(l.match(p)) > 0
}

// match returns the entries that spell p.
func (l *List) match(p string) []entry {
	p = canon(p)
	dir, base := filepath.Dir(p), filepath.Base(p)
	var found []entry
	for _, e := range l.entries {
		switch e.kind {
		case kindName:
			if isRunDir(dir) {
				if ok, _ := path.Match(e.pattern, base); ok {
					found = append(found, e)
				}
			}
		case kindPath:
			if ok, _ := path.Match(e.pattern, p); ok {
				found = append(found, e)
			}
		case kindPrefix:
			if strings.HasPrefix(p, e.pattern) {
				found = append(found, e)
			}
		}
	}
	return found
}

// Holds reports whether the namespace id is the one that an entry
// spelling p holds at this moment: the file an entry's own directory (the
// directory of named namespaces for a name, the directory an entry names,
// or the part of a path before its first glob) has at p's place, looked
// up by this process in its own mount namespace without following any
// symbolic link below that directory (a /proc/<pid>/ns/net link at the
// end is the namespace itself). A nil *List holds everything.
//
// Match and Holds together decide membership by identity: ns1 in a list
// allows the namespace that /var/run/netns/ns1 is now, and no file that
// merely carries the name ns1 in another process's view of the file
// system, such as /proc/<pid>/root/run/netns/ns1.
func (l *List) Holds(p string, id nsenter.ID) error {
	if l == nil {
		return nil
	}
	cp := canon(p)
	var errs []error
	for _, e := range l.match(p) {
		var dir, rel string
		switch e.kind {
		case kindName:
			dir, rel = nsenter.RunDir, filepath.Base(cp)
		case kindPrefix:
			dir, rel = e.pattern, strings.TrimPrefix(cp, e.pattern)
		case kindPath:
			dir, rel = e.base, strings.TrimPrefix(cp, withSlash(e.base))
		}
		got, err := nsenter.StatBeneath(dir, rel)
		switch {
		case err != nil:
			errs = append(errs, err)
		case got == id:
			return nil
		default:
			errs = append(errs, fmt.Errorf("%s is namespace %v, not the one opened (%v)", filepath.Join(dir, rel), got, id))
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%s is %w by %s", p, ErrNotAllowed, l)
	}
	return fmt.Errorf("%s is %w by %s: %w", p, ErrNotAllowed, l, errors.Join(errs...))
}

// isRunDir reports whether dir (spelled as canon does) is the directory
// of named namespaces, as written or with its symbolic links resolved.
func isRunDir(dir string) bool {
	if dir == canon(filepath.Clean(nsenter.RunDir)) {
		return true
	}
	real, err := filepath.EvalSymlinks(nsenter.RunDir)
	return err == nil && dir == canon(real)
}

func (l *List) String() string {
	return l.source + " [" + strings.Join(l.raw, " ") + "]"
}

// Policy decides which namespaces one config may use: both its own allow
// list and the process's ceiling must allow a namespace. A nil *Policy, or
// one whose lists are nil, allows everything.
//
// Caddy's own namespace gets no exception: where a list is set, it must
// name it (e.g. /proc/self/ns/net) like any other. A config reaches it
// with a plain address anyway, but a namespace part that is generated
// (a tenant name from a database spliced into netns/<tenant>/...) or
// substituted at run time (a placeholder whose value a client may control:
// a PROXY header's NETNS TLV, a request header) must not steer a listener
// or a dial onto Caddy's own loopback through /proc/self/ns/net.
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

// Allows checks whether spec (a name under /var/run/netns or an absolute
// path) may be used: its spelling (see List.Match), and, if spec names a
// namespace now, that namespace (see Open; the namespace is only looked
// at, not used). A spec whose file is missing or not a namespace yet is
// decided when it is opened.
func (p *Policy) Allows(spec string) error {
	path, err := nsenter.Path(spec)
	if err != nil {
		return err
	}
	if p == nil || (p.config == nil && p.ceiling == nil) {
		return nil
	}
	if err := p.spelling(path); err != nil {
		return err
	}
	var refused error
	ns, err := nsenter.OpenShared(spec, func(paths []string, id nsenter.ID) error {
		refused = p.check(paths, id)
		return refused
	})
	if err == nil {
		ns.Close()
	}
	return refused
}

// Open opens the namespace spec names if the policy allows it. Every
// symbolic link followed from spec must lead to an allowed path too, and
// the decision is made on the very file that is then opened (see
// nsenter.OpenChecked): its identity must be that of the namespace the
// list names there at that moment (List.Holds). A namespace opened through
// the same path moments before is reused if the path still names it
// (nsenter.OpenShared); the policy decides again, on the paths that first
// led to it and on its identity.
func (p *Policy) Open(spec string) (*nsenter.Namespace, error) {
	path, err := nsenter.Path(spec)
	if err != nil {
		return nil, err
	}
	if err := p.spelling(path); err != nil {
		return nil, fmt.Errorf("namespace %q: %w", spec, err)
	}
	return nsenter.OpenShared(spec, p.check)
}

// spelling refuses a path that no list spells; it opens nothing.
func (p *Policy) spelling(path string) error { return p.refuse(path) }

// check is the decision on the file actually found: every path that led
// to it allowed and the namespace the one each list holds at the last of
// them.
func (p *Policy) check(paths []string, id nsenter.ID) error {
	if p == nil {
		return nil
	}
	return p.decide(paths, id)
}

func (p *Policy) decide(paths []string, id nsenter.ID) error {
	for _, q := range paths {
		if err := p.refuse(q); err != nil {
			if q != paths[0] {
				return fmt.Errorf("%s leads to %s: %w", paths[0], q, err)
			}
			return err
		}
	}
	last := paths[len(paths)-1]
	for _, l := range []*List{p.ceiling, p.config} {
		if err := l.Holds(last, id); err != nil {
			if last != paths[0] {
				return fmt.Errorf("%s leads to %s: %w", paths[0], last, err)
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
