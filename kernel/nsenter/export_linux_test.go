package nsenter

import (
	"time"

	"github.com/vishvananda/netns"
)

// FailRestores makes the next n restores of a thread's namespace fail, for
// tests of the discard path. Do calls setns twice per switch, to enter and
// to restore, so every second call is a restore. It returns a function that
// undoes it. Not safe for concurrent switches.
func FailRestores(n int, err error) (undo func()) {
	orig := setns
	calls, left := 0, n
	setns = func(h netns.NsHandle) error {
		calls++
		if calls%2 == 0 && left > 0 {
			left--
			return err
		}
		return orig(h)
	}
	return func() { setns = orig }
}

// SetShareLinger sets ShareLinger under the lock its readers hold and
// returns a function that restores it.
func SetShareLinger(d time.Duration) (undo func()) {
	shares.Lock()
	defer shares.Unlock()
	orig := ShareLinger
	ShareLinger = d
	return func() {
		shares.Lock()
		defer shares.Unlock()
		ShareLinger = orig
	}
}
