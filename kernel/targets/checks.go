package targets

import (
	"context"
	"sync"
	"time"
)

// RememberFailure counts a failure of s's target for d: s is held (the
// failure keeps the state) until it is forgotten.
func (s *State) RememberFailure(d time.Duration) {
	s.Fails.Add(1)
	s.Hold()
	time.AfterFunc(d, func() {
		s.Fails.Add(-1)
		s.Release()
	})
}

// Every runs round now and at each interval until ctx is done.
func Every(ctx context.Context, interval time.Duration, round func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		round(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// MaxParallelChecks bounds the checks of one round in flight at once.
const MaxParallelChecks = 64

// CheckEach runs check on every element of checks, at most
// MaxParallelChecks at once, and returns when all have returned.
func CheckEach[T any](checks []T, check func(T)) {
	sem := make(chan struct{}, MaxParallelChecks)
	var wg sync.WaitGroup
	for _, c := range checks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			check(c)
		})
	}
	wg.Wait()
}
