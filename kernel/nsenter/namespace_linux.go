//go:build linux

package nsenter

import (
	"fmt"
	"sync/atomic"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is an open handle on a network namespace. It keeps the namespace
// alive until Close; callers should close it as soon as their sockets exist,
// since a socket pins its namespace by itself.
type Namespace struct {
	// Spec is the namespace as the caller named it.
	Spec string
	// Path is the file it was opened from.
	Path string
	// ID identifies the namespace.
	ID ID

	h      netns.NsHandle
	shared *share // for a shared handle (OpenShared): the share Close drops
	closed uint32 // atomic: Close has dropped the share
}

// Open opens the network namespace that spec names and checks that it
// really is one, without opening anything else for reading (see
// OpenChecked). It fails with an error wrapping fs.ErrNotExist when the
// file is missing and ErrNotNetns when it is not a network namespace.
func Open(spec string) (*Namespace, error) { return OpenChecked(spec, nil) }

// check verifies that fd is a network namespace and returns its ID.
func check(fd int, path string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return ID{}, fmt.Errorf("%s is a directory: %w", path, ErrNotNetns)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		// ENOTTY: an ordinary file, including the empty file `ip netns add`
		// creates before it bind-mounts the namespace on it.
		return ID{}, fmt.Errorf("%s is not a namespace file: %w", path, ErrNotNetns)
	}
	if typ != unix.CLONE_NEWNET {
		return ID{}, fmt.Errorf("%s is a %s namespace: %w", path, nsTypeName(typ), ErrNotNetns)
	}
	return ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

func nsTypeName(typ int) string {
	switch typ {
	case unix.CLONE_NEWNS:
		return "mount"
	case unix.CLONE_NEWUTS:
		return "uts"
	case unix.CLONE_NEWIPC:
		return "ipc"
	case unix.CLONE_NEWUSER:
		return "user"
	case unix.CLONE_NEWPID:
		return "pid"
	case unix.CLONE_NEWCGROUP:
		return "cgroup"
	case unix.CLONE_NEWTIME:
		return "time"
	}
	return fmt.Sprintf("type %#x", typ)
}

// Close releases the handle. Sockets created in the namespace stay valid.
func (n *Namespace) Close() error {
	if n.shared != nil {
		if atomic.CompareAndSwapUint32(&n.closed, 0, 1) {
			n.shared.release()
		}
		return nil
	}
	return n.h.Close()
}

// String returns the namespace as the caller named it.
func (n *Namespace) String() string { return n.Spec }

// Current returns the ID of the namespace the calling thread is in. Unless
// the caller has locked its thread, that is the process's own namespace.
func Current() (ID, error) {
	return idOfPath("/proc/thread-self/ns/net")
}

func idOfPath(path string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}
