package nsenter_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/internal/testenv/nstest"
	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// openShared makes a namespace and opens it with OpenShared, with a short
// ShareLinger for the test.
func openShared(t *testing.T) (string, *nsenter.Namespace) {
	t.Helper()
	nstest.Require(t)
	t.Cleanup(nsenter.SetShareLinger(200 * time.Millisecond))
	name := nstest.Add(t, 1)[0]
	ns, err := nsenter.OpenShared(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return name, ns
}

// descriptorsOn counts this process's descriptors on the namespace id.
// The link text of such a descriptor is the path it was opened through, so
// each one is stat'ed.
func descriptorsOn(t *testing.T, id nsenter.ID) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat("/proc/self/fd/"+e.Name(), &st) == nil && uint64(st.Dev) == id.Dev && st.Ino == id.Ino {
			n++
		}
	}
	return n
}

func TestOpenSharedUsesOneDescriptorAndClosesItWhenIdle(t *testing.T) {
	name, a := openShared(t)
	b, err := nsenter.OpenShared("/var/run/netns/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.Spec != name || b.Spec != "/var/run/netns/"+name {
		t.Fatalf("handles: %+v, %+v", a, b)
	}
	if n := descriptorsOn(t, a.ID); n != 1 {
		t.Errorf("%d descriptors on the namespace with two handles open, want 1", n)
	}
	// The namespace still works through both handles.
	for _, ns := range []*nsenter.Namespace{a, b} {
		fd, err := ns.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := nstest.SocketNS(fd); err != nil || got != a.ID {
			t.Errorf("socket made through %q is in %v, %v; want %v", ns.Spec, got, err, a.ID)
		}
		unix.Close(fd)
	}
	a.Close()
	a.Close() // a second Close of one handle must not release the other's share
	if n := descriptorsOn(t, a.ID); n != 1 {
		t.Fatalf("%d descriptors after one of two handles closed, want 1", n)
	}
	b.Close()
	deadline := time.Now().Add(nsenter.ShareLinger + 2*time.Second)
	for descriptorsOn(t, a.ID) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("namespace still open %v after its last handle was closed", nsenter.ShareLinger+2*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenSharedSeesARecreatedNamespace(t *testing.T) {
	name, a := openShared(t)
	old := a.ID
	a.Close()
	nstest.Del(name)
	nstest.Batch(t, "netns add "+name+"\n")
	b, err := nsenter.OpenShared(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.ID == old || b.ID != nstest.ID(t, name) {
		t.Fatalf("after re-creating %q: got %v, old %v, now %v", name, b.ID, old, nstest.ID(t, name))
	}
	if n := descriptorsOn(t, old); n != 0 {
		t.Errorf("%d descriptors still on the deleted namespace", n)
	}
}

func TestOpenSharedAsksAllowOnEveryUse(t *testing.T) {
	name, a := openShared(t)
	defer a.Close()
	refused := errors.New("refused by this caller")
	var paths []string
	_, err := nsenter.OpenShared(name, func(p []string, id nsenter.ID) error {
		paths = p
		return refused
	})
	if !errors.Is(err, refused) || len(paths) == 0 || paths[0] != "/var/run/netns/"+name {
		t.Fatalf("shared open with a refusing allow: %v (paths %v)", err, paths)
	}
}

func TestOpenSharedOffWithZeroLinger(t *testing.T) {
	name, a := openShared(t)
	defer a.Close()
	t.Cleanup(nsenter.SetShareLinger(0))
	b, err := nsenter.OpenShared(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := descriptorsOn(t, a.ID); n != 2 {
		t.Errorf("%d descriptors with sharing off and two handles open, want 2", n)
	}
	b.Close()
	if n := descriptorsOn(t, a.ID); n != 1 {
		t.Errorf("%d descriptors after closing the unshared handle, want 1", n)
	}
}
