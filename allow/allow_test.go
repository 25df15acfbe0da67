package allow

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

func TestMatch(t *testing.T) {
	l, err := Compile("test", []string{
		"ns1", "tenant-*", "/var/run/docker/netns/", "/proc/*/ns/net", "/srv/ns/a",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/var/run/netns/ns1", true},
		{"/run/netns/ns1", true}, // /var/run is /run on most systems; see isRunDir
		{"/var/run/netns/ns2", false},
		{"/var/run/netns/tenant-a", true},
		{"/var/run/netns/tenant-", true},
		{"/var/run/netns/xtenant-a", false},
		{"/var/run/docker/netns/abc", true},
		{"/var/run/docker/netns/sub/abc", true},
		{"/var/run/docker/netnsX/abc", false},
		{"/var/run/docker/netns", false},
		{"/proc/1/ns/net", true},
		{"/proc/1/task/1/ns/net", false}, // * does not cross a slash
		{"/proc/self/ns/mnt", false},
		{"/srv/ns/a", true},
		{"/srv/ns/ab", false},
		{"/srv/ns1", false},
		{"/tmp/ns1", false}, // a name is a name under /var/run/netns only
		// Another process's view of the file system is not the name.
		{"/proc/1/root/run/netns/ns1", false},
		{"/proc/self/root/var/run/netns/ns1", false},
		{"/proc/1/cwd/ns1", false},
		{"/proc/1/root/var/run/docker/netns/abc", false},
	} {
		if got := l.Match(tc.path); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	var none *List
	if !none.Match("/anything") {
		t.Error("a nil list must allow everything")
	}
	empty, _ := Compile("empty", nil)
	if empty.Match("/var/run/netns/ns1") {
		t.Error("an empty list must allow nothing")
	}
}

func TestCompileRefusesBadEntries(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"", "empty"},
		{"a/b", "want a name"},
		{"..", "not a valid name"},
		{"ns[", "bad glob"},
		{"/proc/[/ns/net", "bad glob"},
	} {
		_, err := Compile("the list", []string{"ok", tc.entry})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "the list: entry 1") {
			t.Errorf("entry %q: %v, want %q", tc.entry, err, tc.want)
		}
	}
}

func TestPolicyNeedsBothLists(t *testing.T) {
	config, _ := Compile("config", []string{"ns1", "ns2"})
	ceiling, _ := Compile("CADDY_NETNS_ALLOW", []string{"ns2", "ns3"})
	p := &Policy{config: config, ceiling: ceiling}
	for _, tc := range []struct {
		spec, refusedBy string
	}{
		{"ns1", "CADDY_NETNS_ALLOW [ns2 ns3]"},
		{"ns2", ""},
		{"ns3", "config [ns1 ns2]"},
		{"/var/run/netns/ns2", ""},
	} {
		err := p.Allows(tc.spec)
		switch {
		case tc.refusedBy == "" && err != nil:
			t.Errorf("%s: %v", tc.spec, err)
		case tc.refusedBy != "" && (!errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.refusedBy)):
			t.Errorf("%s: %v, want refused by %s", tc.spec, err, tc.refusedBy)
		}
	}
	var none *Policy
	if err := none.Allows("anything"); err != nil {
		t.Errorf("nil policy: %v", err)
	}
}

func TestCeilingFromEnvironment(t *testing.T) {
	t.Setenv(CeilingEnv, "ns1, tenant-*  /var/run/docker/netns/")
	l, err := Ceiling()
	if err != nil {
		t.Fatal(err)
	}
	if !l.Match("/var/run/netns/tenant-x") || !l.Match("/var/run/docker/netns/x") || l.Match("/var/run/netns/ns2") {
		t.Errorf("ceiling %s", l)
	}
	t.Setenv(CeilingEnv, "a/b")
	if _, err := New(nil); err == nil || !strings.Contains(err.Error(), CeilingEnv) {
		t.Errorf("bad ceiling: %v", err)
	}
	t.Setenv(CeilingEnv, "")
	if l, err := Ceiling(); l != nil || err != nil {
		t.Errorf("empty ceiling: %v, %v", l, err)
	}
}

// Caddy's own namespace gets no exception: where a list is set it must
// name it, whatever path leads there, so that neither a generated namespace
// part nor a placeholder a client may control (/proc/self/ns/net) reaches
// Caddy's own loopback. Another kind of namespace of our own is refused too.
func TestOwnNamespaceNeedsTheList(t *testing.T) {
	if _, err := nsenter.Current(); err != nil {
		t.Fatalf("own namespace: %v", err)
	}
	l, _ := Compile("config", []string{"ns1"})
	p := &Policy{config: l}
	for _, spec := range []string{"/proc/self/ns/net", "/proc/thread-self/ns/net", "/var/run/netns/../../../proc/self/ns/net"} {
		if err := p.Allows(spec); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Allows(%s): %v, want refused", spec, err)
		}
		if ns, err := p.Open(spec); !errors.Is(err, ErrNotAllowed) {
			if err == nil {
				ns.Close()
			}
			t.Errorf("Open(%s): %v, want refused", spec, err)
		}
	}
	// Named by the list, it is allowed like any other namespace.
	l, _ = Compile("config", []string{"/proc/self/ns/net"})
	ns, err := (&Policy{config: l}).Open("/proc/self/ns/net")
	if err != nil {
		t.Errorf("own namespace named by the list: %v", err)
	} else {
		ns.Close()
	}
	if err := (&Policy{config: l}).Allows("/proc/self/ns/mnt"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("another kind of namespace of our own: %v", err)
	}
	// Without lists, everything is allowed.
	var none *Policy
	if ns, err := none.Open("/proc/self/ns/net"); err != nil {
		t.Errorf("no policy: %v", err)
	} else {
		ns.Close()
	}
}
