//go:build linux

package nsenter

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links followed from a namespace path.
const maxLinks = 8

// OpenChecked opens the network namespace that spec names, like Open, and
// lets allow refuse it before it is opened for reading.
//
// The path is walked without opening anything for reading: each symbolic
// link at the end of it is read and its target becomes the next path (at
// most 8), except the magic links of /proc (/proc/<pid>/ns/net), which are
// the namespace itself. The file found is held by an O_PATH descriptor,
// which has no side effect on FIFOs or devices, and must be on nsfs, the
// namespace file system; only then is allow called, with every path of the
// walk (spec's own first) and the namespace's identity, and only if it
// returns nil is the file opened for reading, through that same descriptor
// so nothing can be swapped in between. Symbolic links in the directories
// of a path are followed by the kernel as usual.
//
// A nil allow allows everything.
func OpenChecked(spec string, allow func(paths []string, id ID) error) (*Namespace, error) {
	n, _, err := openChecked(spec, allow)
	return n, err
}

// openChecked is OpenChecked that also returns the paths of the walk.
func openChecked(spec string, allow func(paths []string, id ID) error) (*Namespace, []string, error) {
	path, err := Path(spec)
	if err != nil {
		return nil, nil, err
	}
	pfd, paths, err := walk(spec, path)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(pfd)

	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, nil, fmt.Errorf("namespace %q: stat %s: %w", spec, path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil, nil, fmt.Errorf("namespace %q: %s is a directory: %w", spec, path, ErrNotNetns)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(pfd, &sfs); err != nil {
		return nil, nil, fmt.Errorf("namespace %q: statfs %s: %w", spec, path, err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return nil, nil, fmt.Errorf("namespace %q: %s is not a namespace file: %w", spec, path, ErrNotNetns)
	}
	id := ID{Dev: uint64(st.Dev), Ino: st.Ino}
	if allow != nil {
		if err := allow(paths, id); err != nil {
			return nil, nil, fmt.Errorf("namespace %q: %w", spec, err)
		}
	}

	// Re-open the very inode held by pfd for reading: setns and
	// NS_GET_NSTYPE need a real descriptor.
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %q: opening %s: %w", spec, path, err)
	}
	got, err := check(fd, path)
	if err == nil && got != id {
		err = fmt.Errorf("%s changed while it was opened", path)
	}
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("namespace %q: %w", spec, err)
	}
	return &Namespace{Spec: spec, Path: path, ID: id, h: netns.NsHandle(fd)}, paths, nil
}

// walk returns an O_PATH descriptor on the file path leads to, and the
// paths it went through.
func walk(spec, path string) (int, []string, error) {
	paths := []string{path}
	cur := path
	for {
		pfd, err := unix.Open(cur, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return -1, nil, fmt.Errorf("namespace %q: %s does not exist: %w", spec, cur, fs.ErrNotExist)
			}
			return -1, nil, fmt.Errorf("namespace %q: opening %s: %w", spec, cur, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			unix.Close(pfd)
			return -1, nil, fmt.Errorf("namespace %q: stat %s: %w", spec, cur, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return pfd, paths, nil
		}
		target, err := readlink(pfd)
		unix.Close(pfd)
		if err != nil {
			return -1, nil, fmt.Errorf("namespace %q: reading link %s: %w", spec, cur, err)
		}
		if isMagic(target) {
			// /proc/<pid>/ns/net: the link is the namespace; only
			// the kernel can follow it.
			pfd, err := unix.Open(cur, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				if errors.Is(err, unix.ENOENT) {
					return -1, nil, fmt.Errorf("namespace %q: %s does not exist: %w", spec, cur, fs.ErrNotExist)
				}
				return -1, nil, fmt.Errorf("namespace %q: opening %s: %w", spec, cur, err)
			}
			return pfd, paths, nil
		}
		if len(paths) > maxLinks {
			return -1, nil, fmt.Errorf("namespace %q: more than %d symbolic links from %s", spec, maxLinks, path)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cur), target)
		}
		cur = filepath.Clean(target)
		paths = append(paths, cur)
	}
}

// readlink reads the symbolic link that the O_PATH|O_NOFOLLOW descriptor
// fd holds.
func readlink(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// isMagic reports whether a link target is a /proc namespace link, such
// as "net:[4026531840]", rather than a path.
func isMagic(target string) bool {
	return !strings.ContainsRune(target, '/') && strings.HasSuffix(target, "]") && strings.Contains(target, ":[")
}

// StatID returns the identity of the namespace file at path, following
// links, without opening it.
func StatID(path string) (ID, error) { return idOfPath(path) }

// StatBeneath returns the identity of the file that rel, a relative path
// of one or more names, names below the directory dir, as this process
// sees it now. dir is opened as usual, following links; below it no
// symbolic link is followed, in the directories of rel or at its end,
// except a /proc namespace link (net:[...]) as the last name, which is
// the namespace itself. So the answer is the file that the entries of dir
// hold, never one that a link placed among them leads to, such as another
// process's view of the file system through /proc/<pid>/root.
func StatBeneath(dir, rel string) (ID, error) {
	if rel != "" && rel != "." && rel != ".." && !strings.ContainsRune(rel, '/') {
		// One name: lstat resolves dir as usual and not the name, in
		// one system call. A link is left to the walk below.
		var st unix.Stat_t
		p := filepath.Join(dir, rel)
		if err := unix.Lstat(p, &st); err != nil {
			return ID{}, fmt.Errorf("stat %s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
		}
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ID{}, fmt.Errorf("opening %s: %w", dir, err)
	}
	names := strings.Split(rel, "/")
	cur := dir
	var st unix.Stat_t
	for i, name := range names {
		if name == "" || name == "." || name == ".." {
			unix.Close(fd)
			return ID{}, fmt.Errorf("%q below %s: not a plain relative path", rel, dir)
		}
		cur = filepath.Join(cur, name)
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return ID{}, fmt.Errorf("opening %s: %w", cur, err)
		}
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(fd)
			unix.Close(next)
			return ID{}, fmt.Errorf("stat %s: %w", cur, err)
		}
		last := i == len(names)-1
		switch typ := st.Mode & unix.S_IFMT; {
		case typ == unix.S_IFLNK:
			target, rerr := readlink(next)
			unix.Close(next)
			if !last || rerr != nil || !isMagic(target) {
				unix.Close(fd)
				return ID{}, fmt.Errorf("%s is a symbolic link", cur)
			}
			// The namespace link itself: only the kernel follows it.
			next, err = unix.Openat(fd, name, unix.O_PATH|unix.O_CLOEXEC, 0)
			unix.Close(fd)
			if err != nil {
				return ID{}, fmt.Errorf("opening %s: %w", cur, err)
			}
			err = unix.Fstat(next, &st)
			unix.Close(next)
			if err != nil {
				return ID{}, fmt.Errorf("stat %s: %w", cur, err)
			}
			return ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
		case !last && typ != unix.S_IFDIR:
			unix.Close(fd)
			unix.Close(next)
			return ID{}, fmt.Errorf("%s is not a directory", cur)
		}
		unix.Close(fd)
		fd = next
	}
	unix.Close(fd)
	return ID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}
