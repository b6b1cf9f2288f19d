package workpool_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/workpool-go/workpool"
)

var errTransient = errors.New("provider: 503")

// attemptLog records each attempt: when it started (on synctest's clock,
// relative to start) and which attempt workpool.Attempt reported.
type attemptLog struct {
	mu     sync.Mutex
	start  time.Time
	at     []time.Duration
	number []int
}

func (l *attemptLog) record(ctx context.Context) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, time.Since(l.start))
	n := workpool.Attempt(ctx)
	l.number = append(l.number, n)
	return n
}

func TestSynctestRetryBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &attemptLog{start: time.Now()}
		var final []error
		p := startPool(t, func(ctx context.Context, n int) error {
			log.record(ctx)
			return errTransient
		}, workpool.WithWorkers(1), workpool.WithRetry(workpool.RetryPolicy{
			MaxAttempts: 5, InitialBackoff: time.Second, Multiplier: 3, MaxBackoff: 5 * time.Second,
		}), workpool.OnError(func(n int, err error) { final = append(final, err) }),
			workpool.WithShutdownTimeout(time.Minute))
		if err := p.Submit(1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := p.Stats(); got.Retrying != 1 || got.Active != 0 || got.Retries != 1 {
			t.Errorf("after the first failure: %+v; want Retrying 1, Active 0, Retries 1", got)
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v; want nil: the retries before its deadline run", err)
		}
		// Waits 1s, 3s, then capped at 5s twice.
		want := []time.Duration{0, time.Second, 4 * time.Second, 9 * time.Second, 14 * time.Second}
		if !slices.Equal(log.at, want) {
			t.Errorf("attempts started at %v; want %v", log.at, want)
		}
		if !slices.Equal(log.number, []int{1, 2, 3, 4, 5}) {
			t.Errorf("Attempt(ctx) = %v; want 1..5", log.number)
		}
		if len(final) != 1 || !errors.Is(final[0], errTransient) {
			t.Errorf("OnError got %v; want once, the last error", final)
		}
		checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: p.Stats().QueueCapacity,
			Submitted: 1, Completed: 1, Failed: 1, Retries: 4})
	})
}

func TestSynctestRetryNoRetryByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		p := startPool(t, func(ctx context.Context, n int) error {
			runs.Add(1)
			return errTransient
		}, workpool.WithWorkers(1), workpool.WithRetry(workpool.RetryPolicy{}))
		p.Submit(1)
		shutdown(t, p)
		if runs.Load() != 1 {
			t.Errorf("ran %d times under the zero RetryPolicy; want 1", runs.Load())
		}
		if s := p.Stats(); s.Retries != 0 || s.Failed != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// startPool is newPool, started.
func startPool[T any](t *testing.T, h workpool.Handler[T], opts ...workpool.Option) *workpool.Pool[T] {
	t.Helper()
	p := newPool(t, h, opts...)
	p.Start()
	return p
}
