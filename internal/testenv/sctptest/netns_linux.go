package sctptest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// NetnsDir is where named network namespaces are bind-mounted, as iproute2
// does. The sctpvm guest makes /var/run a link to a tmpfs at /run.
const NetnsDir = "/var/run/netns"

// Netns is a named network namespace bind-mounted at NetnsDir/Name.
type Netns struct {
	Name string
	Path string
}

// NewNetns creates a named network namespace with lo up and removes it when
// the test ends. An empty name picks a random one. It needs root.
func NewNetns(t testing.TB, name string) *Netns {
	t.Helper()
	RequireRoot(t)
	ns, err := CreateNetns(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("deleting netns %q: %v", ns.Name, err)
		}
	})
	return ns
}

// CreateNetns creates a network namespace, bind-mounts it at NetnsDir/name
// and brings its loopback up. An empty name picks a random one.
func CreateNetns(name string) (*Netns, error) {
	if name == "" {
		var b [4]byte
		rand.Read(b[:])
		name = "sctptest-" + hex.EncodeToString(b[:])
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns %q: %w", name, err)
	}
	path := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nil, fmt.Errorf("netns %q: creating mount point: %w", name, err)
	}
	f.Close()
	ns := &Netns{Name: name, Path: path}

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		err = unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
		if err != nil {
			err = fmt.Errorf("bind-mounting namespace: %w", err)
		} else {
			err = LinkUp("lo")
		}
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			// Leave the thread locked: the runtime discards it when this
			// goroutine exits, so no other goroutine runs in the new namespace.
			errc <- errors.Join(err, fmt.Errorf("restoring namespace: %w", serr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
		return nil, fmt.Errorf("netns %q: %w", name, err)
	}
	return ns, nil
}

// Delete unmounts and removes the namespace; it disappears with its last user.
func (ns *Netns) Delete() error {
	if err := unix.Unmount(ns.Path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("netns %q: unmounting: %w", ns.Name, err)
	}
	if err := os.Remove(ns.Path); err != nil {
		return fmt.Errorf("netns %q: %w", ns.Name, err)
	}
	return nil
}

// Do runs fn on a thread that has entered the namespace, through
// nsenter.Namespace.Do (see there for what fn may do). A nil *Netns runs
// fn in the current namespace.
func (ns *Netns) Do(fn func() error) error {
	if ns == nil {
		return fn()
	}
	n, err := nsenter.Open(ns.Path)
	if err != nil {
		return fmt.Errorf("netns %q: %w", ns.Name, err)
	}
	defer n.Close()
	return n.Do(fn)
}

// Socket creates a socket inside the namespace. Its signature matches
// sctpnet.SocketFunc.
func (ns *Netns) Socket(domain, typ, proto int) (fd int, err error) {
	err = ns.Do(func() error {
		fd, err = unix.Socket(domain, typ, proto)
		return err
	})
	return fd, err
}

// LinkUp sets IFF_UP on the named interface of the calling thread's
// namespace. Call it inside Do (with the thread locked).
func LinkUp(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %q: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("link %q: setting up: %w", name, err)
	}
	return nil
}

// linkFlags returns the interface flags (IFF_*) of the named interface.
func linkFlags(name string) (uint32, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("link %q: %w", name, err)
	}
	return link.Attrs().RawFlags, nil
}

// LinkDown clears IFF_UP on the named interface of ns, as `ip link set
// <name> down` would (the guest has no iproute2).
func (ns *Netns) LinkDown(name string) error {
	return ns.Do(func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %q: %w", name, err)
		}
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("link %q: setting down: %w", name, err)
		}
		return nil
	})
}
