//go:build linux

package nswatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func expectNotify(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no notification for %s", what)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

// Subscribers hear about entries created and removed, a directory that
// appears only after Subscribe, and share one watcher per directory.
func TestSubscribe(t *testing.T) {
	old := RetryInterval
	RetryInterval = 20 * time.Millisecond
	t.Cleanup(func() { RetryInterval = old })
	dir := filepath.Join(t.TempDir(), "netns")

	a, unsubA := Subscribe(dir)
	defer unsubA()
	b, unsubB := Subscribe(dir + "/")
	watchersMu.Lock()
	n := len(watchers)
	watchersMu.Unlock()
	if n != 1 {
		t.Errorf("%d watchers for one directory", n)
	}

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, a, "the directory appearing")
	expectNotify(t, b, "the directory appearing (second subscriber)")
	drain(a)
	drain(b)

	f := filepath.Join(dir, "ns1")
	if err := os.WriteFile(f, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, a, "a file created")
	drain(a)
	unsubB()
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, a, "a file removed")

	unsubA()
	watchersMu.Lock()
	n = len(watchers)
	watchersMu.Unlock()
	if n != 0 {
		t.Errorf("%d watchers left after the last unsubscribe", n)
	}
}
