package allow

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// The decision is made on the file actually opened: a link in an allowed
// directory cannot lead to a namespace the list does not allow, and a
// /proc/<pid>/ns/net path is not an alias of an allowed name.
func TestOpenFollowsLinksOnlyToAllowedPaths(t *testing.T) {
	nstest.Require(t)
	nss := nstest.Add(t, 2)
	allowed, other := nss[0], nss[1]
	dir := t.TempDir()
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	toAllowed := link("to-allowed", filepath.Join(nsenter.RunDir, allowed))
	toOther := link("to-other", filepath.Join(nsenter.RunDir, other))
	relative := link("relative", "to-other")
	loop := link("loop", "loop")

	l, err := Compile("config", []string{allowed, dir + "/"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{config: l}

	ns, err := p.Open(toAllowed)
	if err != nil {
		t.Fatalf("link to an allowed namespace: %v", err)
	}
	if ns.ID != nstest.ID(t, allowed) {
		t.Errorf("opened %v, want %s", ns.ID, allowed)
	}
	ns.Close()

	for _, spec := range []string{toOther, relative} {
		_, err := p.Open(spec)
		if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "leads to /var/run/netns/"+other) {
			t.Errorf("%s: %v, want refused as leading to %s", spec, err, other)
		}
	}
	if _, err := p.Open(loop); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("link loop: %v", err)
	}

	// A process inside the allowed namespace: its /proc path is the same
	// namespace, but it is a path the list does not name.
	cmd := nstest.SleepIn(t, allowed)
	procPath := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	if id, err := nsenter.StatID(procPath); err != nil || id != nstest.ID(t, allowed) {
		t.Fatalf("%s: %v %v", procPath, id, err)
	}
	if _, err := p.Open(procPath); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("%s (in %s): %v, want refused", procPath, allowed, err)
	}
	if _, err := p.Open(other); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("%s: %v, want refused", other, err)
	}
}

// Files that are not namespaces are never opened for reading: a FIFO would
// block the load until a writer came, a device could act on open.
func TestOpenDoesNotOpenOtherFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := nsenter.Open(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, nsenter.ErrNotNetns) {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO as a namespace blocked")
	}
	for _, path := range []string{"/dev/null", "/etc/hostname", dir, "/proc/self/ns/mnt"} {
		if _, err := nsenter.Open(path); !errors.Is(err, nsenter.ErrNotNetns) {
			t.Errorf("%s: %v, want ErrNotNetns", path, err)
		}
	}
}

// The decision is on the namespace held open, by identity, with no window
// between the check and the use: a name re-created as another namespace
// after the file was opened but before the check is refused (the list now
// names another namespace), and one re-created after the check does not
// change what is used (the descriptor checked is the one used).
func TestDecisionIsOnTheOpenedFile(t *testing.T) {
	nstest.Require(t)
	name := nstest.Name("nlt")
	nstest.Batch(t, "netns add "+name+"\n")
	t.Cleanup(func() { nstest.Del(name) })
	l, err := Compile("config", []string{name})
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{config: l}
	recreate := func() {
		t.Helper()
		nstest.Batch(t, "netns del "+name+"\nnetns add "+name+"\n")
	}

	first := nstest.ID(t, name)
	_, err = nsenter.OpenChecked(name, func(paths []string, id nsenter.ID) error {
		recreate()
		return p.check(paths, id)
	})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "not the one opened") {
		t.Errorf("re-created between open and check: %v, want refused", err)
	}
	if second := nstest.ID(t, name); second == first {
		t.Fatalf("%s was not re-created", name)
	}

	checked := nstest.ID(t, name)
	ns, err := nsenter.OpenChecked(name, func(paths []string, id nsenter.ID) error {
		err := p.check(paths, id)
		recreate()
		return err
	})
	if err != nil {
		t.Fatalf("re-created after the check: %v", err)
	}
	defer ns.Close()
	if ns.ID != checked {
		t.Errorf("re-created after the check: got namespace %v, want the one checked, %v", ns.ID, checked)
	}
	ln, err := nsenter.ListenPacket(ns, "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, _ := ln.(syscall.Conn).SyscallConn()
	var got nsenter.ID
	_ = raw.Control(func(fd uintptr) { got, err = nstest.SocketNS(int(fd)) })
	if err != nil || got != checked {
		t.Errorf("socket in %v (%v), want the namespace checked, %v", got, err, checked)
	}
}

// The identity of what an entry holds is looked up without following links
// below the entry's directory, except a /proc namespace link at the end.
func TestHolds(t *testing.T) {
	nstest.Require(t)
	nss := nstest.Add(t, 1)
	dir := t.TempDir()
	if err := os.Symlink("/proc/self", filepath.Join(dir, "self")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(nsenter.RunDir, nss[0]), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	own, err := nsenter.Current()
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	l, err := Compile("config", []string{nss[0], "/proc/*/ns/net", dir + "/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		id   nsenter.ID
		want string // "" if held
	}{
		{"/var/run/netns/" + nss[0], nstest.ID(t, nss[0]), ""},
		{"/run/netns/" + nss[0], nstest.ID(t, nss[0]), ""},
		{"/run/netns/" + nss[0], own, "not the one opened"},
		{"/proc/" + pid + "/ns/net", own, ""},
		{"/proc/" + pid + "/ns/net", nstest.ID(t, nss[0]), "not the one opened"},
		{dir + "/self/ns/net", own, "self is a symbolic link"},
		{dir + "/link", nstest.ID(t, nss[0]), "link is a symbolic link"},
		{"/proc/" + pid + "/root/run/netns/" + nss[0], nstest.ID(t, nss[0]), "not allowed"},
	} {
		err := l.Holds(tc.path, tc.id)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.want != "" && (!errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want refused: %q", tc.path, err, tc.want)
		}
	}
}
