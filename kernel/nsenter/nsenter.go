package nsenter

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ID identifies a network namespace by the device and inode of its nsfs
// file. Two paths that name the same namespace have the same ID; a namespace
// deleted and re-created under the same name gets a new one.
type ID struct {
	Dev uint64
	Ino uint64
}

func (id ID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// ErrNotNetns is wrapped by errors for files that are not network namespaces.
var ErrNotNetns = errors.New("not a network namespace")

// ErrPermission is wrapped by errors caused by missing privileges to enter a
// namespace.
var ErrPermission = errors.New("entering a network namespace needs CAP_SYS_ADMIN")

// OnThreadDiscarded, if set, is called with the error when a thread is
// discarded because its namespace could not be restored. It is called from
// the goroutine that called Do, on its own thread, never from the discarded
// one (which is still in the foreign namespace), so it may log. It should
// not block for long: the caller of Do waits for it.
var OnThreadDiscarded func(err error)

// RunDir is where `ip netns add` bind-mounts named namespaces. A namespace
// given by a bare name is looked up here.
var RunDir = "/var/run/netns"

// Path returns the file that spec names: an absolute path as is, a bare name
// under RunDir.
func Path(spec string) (string, error) {
	switch {
	case spec == "":
		return "", errors.New("empty namespace name")
	case filepath.IsAbs(spec):
		return filepath.Clean(spec), nil
	case strings.ContainsRune(spec, '/') || spec == "." || spec == "..":
		return "", fmt.Errorf("namespace %q: want a name under %s or an absolute path", spec, RunDir)
	}
	return filepath.Join(RunDir, spec), nil
}
