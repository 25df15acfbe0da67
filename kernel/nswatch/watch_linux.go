//go:build linux

package nswatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// RetryInterval is how often a watch on a directory that does not exist
// (yet) is tried again.
var RetryInterval = time.Second

const mask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// Watcher reports changes in one directory to any number of subscribers.
// Each directory has one inotify instance however many subscribers it has
// (the default limit is 128 instances per user).
type Watcher struct {
	dir    string
	cancel context.CancelFunc

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
	refs int
}

var (
	watchersMu sync.Mutex
	watchers   = map[string]*Watcher{}
)

// Subscribe returns a channel that receives a value (coalesced: at most
// one pending) whenever an entry of dir is created, deleted, renamed or
// changes attributes, and whenever the watch itself is (re)established, for
// example when dir appears after Subscribe. Call the returned function to
// unsubscribe; the inotify instance closes with the last subscriber.
func Subscribe(dir string) (<-chan struct{}, func()) {
	dir = filepath.Clean(dir)
	watchersMu.Lock()
	w := watchers[dir]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &Watcher{dir: dir, cancel: cancel, subs: map[chan struct{}]struct{}{}}
		watchers[dir] = w
		go w.run(ctx)
	}
	w.refs++
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	watchersMu.Unlock()

	var once sync.Once
	return ch, func() {
		once.Do(func() {
			watchersMu.Lock()
			defer watchersMu.Unlock()
			w.mu.Lock()
			delete(w.subs, ch)
			w.mu.Unlock()
			w.refs--
			if w.refs == 0 {
				delete(watchers, dir)
				w.cancel()
			}
		})
	}
}

func (w *Watcher) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// run keeps a watch on the directory until ctx ends, re-establishing it
// when the directory is missing, removed or moved.
func (w *Watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			if f := OnError; f != nil {
				f(w.dir, err)
			}
		}
		t := time.NewTimer(RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// OnError, if set, is told about failures to watch a directory other than
// its absence. It must not block.
var OnError func(dir string, err error)

// watchOnce watches the directory until it goes away, an error occurs or
// ctx ends.
func (w *Watcher) watchOnce(ctx context.Context) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify_init1: %w", err)
	}
	// Non-blocking: reads park on Go's netpoller, no thread is held.
	f := os.NewFile(uintptr(fd), "inotify:"+w.dir)
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, w.dir, mask); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fs.ErrNotExist
		}
		return fmt.Errorf("watching %s: %w", w.dir, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.Close() })
	defer stop()
	// Entries may have changed before the watch existed.
	w.notify()

	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading inotify events for %s: %w", w.dir, err)
		}
		gone := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(buf, off))
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED|unix.IN_UNMOUNT) != 0 {
				gone = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		w.notify()
		if gone {
			return nil
		}
	}
}
