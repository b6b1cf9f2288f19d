package workpool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/workpool-go/workpool"
)

// Regression tests for what a caller observes against what the pool does:
// a state that Stats, IsRunning, Resize or Shutdown reports must not
// contradict the behaviour that follows it.

// TestShutdownAfterRetriesDropped: when the base context ends while jobs
// wait for a retry, a graceful Shutdown that returns has seen them dropped:
// Stats().Retrying and the RetryMetrics gauge are 0. Before the fix the
// retry was counted as dropped (which wakes Shutdown) before it stopped
// counting as waiting, and Shutdown could return in between.
func TestShutdownAfterRetriesDropped(t *testing.T) {
	for round := range 1000 {
		base, cancel := context.WithCancel(context.Background())
		m := &retryEvents{}
		p, err := workpool.New(func(context.Context, int) error { return errors.New("transient") },
			workpool.WithWorkers(1), workpool.WithContext(base), workpool.WithMetrics(m),
			workpool.WithRateLimit(rate.Every(time.Hour), 4),
			workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour}))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		for j := range 5 { // four take the burst, fail and wait an hour; the fifth waits for a token
			if err := p.Submit(j); err != nil {
				t.Fatal(err)
			}
		}
		waitUntil(t, "four retries waiting and a job held for a token", func() bool {
			s := p.Stats()
			return s.Retrying == 4 && s.Active == 1 && s.Queued == 0
		})
		cancel()
		err = p.Shutdown(context.Background())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: Shutdown = %v; want context.Canceled", round, err)
		}
		s := p.Stats()
		if gauge := m.retried.Load() - m.ended.Load(); s.Retrying != 0 || gauge != 0 || s.Dropped != 5 || s.Active != 0 {
			t.Fatalf("round %d: after Shutdown returned: %+v, RetryMetrics gauge %d; want Retrying 0, gauge 0, Dropped 5, Active 0",
				round, s, gauge)
		}
	}
}

// TestRateLimitedJobIsActive: a job that a worker holds while it waits for a
// rate-limit token shows in Stats as Active, so the identity holds while it
// waits; a hard stop then drops it.
func TestRateLimitedJobIsActive(t *testing.T) {
	var drops atomic.Int64
	p, err := workpool.New(func(context.Context, int) error { return nil },
		workpool.WithWorkers(1), workpool.WithQueueSize(4), workpool.WithRateLimit(rate.Every(time.Hour), 1),
		workpool.OnDrop(func(int, error) { drops.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	for j := range 3 {
		if err := p.Submit(j); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the first job done and the second held", func() bool {
		s := p.Stats()
		return s.Completed == 1 && s.Active == 1 && s.Queued == 1
	})
	s := p.Stats()
	if got := s.Completed + s.Dropped + uint64(s.Queued+s.Active+s.Retrying); got != s.Submitted || s.Active > s.Workers {
		t.Errorf("Stats while a job waits for a token = %+v; want Submitted == Completed+Dropped+Queued+Active+Retrying, Active <= Workers", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v; want context.Canceled", err)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 4, Submitted: 3, Completed: 1, Dropped: 2})
	if n := drops.Load(); n != 2 {
		t.Errorf("OnDrop called %d times; want 2 (the held job and the queued one)", n)
	}
}

// TestBaseEndedNotRunning: once the base context has ended, IsRunning,
// Resize and Submit agree that the pool is shutting down, even before the
// base context's watcher has run.
func TestBaseEndedNotRunning(t *testing.T) {
	for round := range 500 {
		base, cancel := context.WithCancel(context.Background())
		p, err := workpool.New(func(context.Context, int) error { return nil },
			workpool.WithWorkers(1), workpool.WithContext(base))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		cancel()
		running, resized, submitted := p.IsRunning(), p.Resize(2), p.Submit(1)
		if running || !errors.Is(resized, workpool.ErrClosed) || !errors.Is(submitted, workpool.ErrClosed) {
			t.Fatalf("round %d: after the base context ended: IsRunning() = %v, Resize(2) = %v, Submit = %v; want false, ErrClosed, ErrClosed",
				round, running, resized, submitted)
		}
		// Idle, the pool may finish before the watcher stops it hard: nil
		// is right then, as nothing was dropped.
		if err := p.Shutdown(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: Shutdown = %v; want nil or context.Canceled", round, err)
		}
	}
}

// TestShutdownAfterFinishedPastTimeout: a Shutdown called after the pool
// finished returns what the stop returned, even once the shutdown timeout
// has passed (as documented on Shutdown).
func TestShutdownAfterFinishedPastTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := workpool.New(func(context.Context, int) error { return nil },
			workpool.WithShutdownTimeout(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v; want nil", err)
		}
		time.Sleep(time.Second) // virtual: well past the shutdown timeout
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown after the pool finished, past its timeout = %v; want nil", err)
		}
	})
}
