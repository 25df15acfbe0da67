//go:build !linux

package nswatch

import "time"

// RetryInterval is unused on this platform.
var RetryInterval = time.Second

// OnError is unused on this platform.
var OnError func(dir string, err error)

// Subscribe returns a channel that never receives: there is nothing to
// watch on this platform.
func Subscribe(dir string) (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}
