package allow

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
