package workpool_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/workpool-go/workpool"
)

// startLog records when each job started, relative to start.
type startLog struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
}

func (l *startLog) handle(ctx context.Context, n int) error {
	l.mu.Lock()
	l.at = append(l.at, time.Since(l.start))
	l.mu.Unlock()
	return nil
}

func (l *startLog) times() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.at)
}

func TestSynctestRateLimitStartTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &startLog{start: time.Now()}
		waits := &waitMetrics{}
		p := startPool(t, log.handle, workpool.WithWorkers(4), workpool.WithMetrics(waits),
			workpool.WithRateLimit(10, 2)) // 10 per second, bursts of 2
		for n := range 6 {
			if err := p.Submit(n); err != nil {
				t.Fatal(err)
			}
		}
		shutdown(t, p)
		// Two at once (the burst), then one every 100ms.
		want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}
		if got := log.times(); !slices.Equal(got, want) {
			t.Errorf("jobs started at %v; want %v", got, want)
		}
		// The token wait is queue wait.
		if got := waits.sorted(); !slices.Equal(got, want) {
			t.Errorf("JobStarted waits %v; want %v", got, want)
		}
	})
}

// waitMetrics records the queue wait of each started job.
type waitMetrics struct {
	workpool.NopMetrics
	mu    sync.Mutex
	waits []time.Duration
}

func (m *waitMetrics) JobStarted(d time.Duration) {
	m.mu.Lock()
	m.waits = append(m.waits, d)
	m.mu.Unlock()
}

func (m *waitMetrics) sorted() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := slices.Clone(m.waits)
	slices.Sort(w)
	return w
}

func TestSynctestSetRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &startLog{start: time.Now()}
		p := startPool(t, log.handle, workpool.WithWorkers(2), workpool.WithRateLimit(1, 1)) // one per second
		if l, b := p.RateLimit(); l != 1 || b != 1 {
			t.Errorf("RateLimit() = %v, %d; want 1, 1", l, b)
		}
		for n := range 4 {
			p.Submit(n)
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait() // job 0 ran at 0; the two workers wait for tokens due at 1s and 2s
		if err := p.SetRateLimit(10, 1); err != nil {
			t.Fatal(err)
		}
		// The waiting workers take their tokens again under 10/s.
		synctest.Wait()
		time.Sleep(time.Second)
		if err := p.SetRateLimit(rate.Inf, 0); err != nil {
			t.Fatal(err)
		}
		if l, b := p.RateLimit(); l != rate.Inf || b != 0 {
			t.Errorf("RateLimit() after rate.Inf = %v, %d; want Inf, 0", l, b)
		}
		for n := range 3 {
			p.Submit(10 + n)
		}
		synctest.Wait()
		shutdown(t, p)
		got := log.times()
		if len(got) != 7 || got[0] != 0 {
			t.Fatalf("jobs started at %v; want 7, the first at 0", got)
		}
		// Under the old limit they were due at 1s, 2s and 3s; under the
		// new one all three start before 1s. (Exactly when depends on the
		// order in which the waiting workers cancel their reservations:
		// x/time/rate's Cancel gives back only the tokens no later
		// reservation has counted on; runs saw 625-750ms and 650-850ms.)
		for _, at := range got[1:4] {
			if at <= 500*time.Millisecond || at >= time.Second {
				t.Errorf("jobs 1-3 started at %v; want each in (500ms, 1s): under the new limit", got[1:4])
				break
			}
		}
		if !slices.Equal(got[4:], []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond}) {
			t.Errorf("with the limit removed, jobs started at %v; want all at 1.5s", got[4:])
		}
	})
}

// TestSynctestRateLimitShutdownInterrupts: a worker waiting for a token at
// Shutdown's deadline gives up, and its job goes to OnDrop, as do the queued.
func TestSynctestRateLimitShutdownInterrupts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var drops []error
		log := &startLog{start: time.Now()}
		p := startPool(t, log.handle, workpool.WithWorkers(1), workpool.WithShutdownTimeout(5*time.Second),
			workpool.WithRateLimit(0.1, 1), // one per 10s
			workpool.OnDrop(func(n int, err error) { mu.Lock(); drops = append(drops, err); mu.Unlock() }))
		for n := range 3 {
			p.Submit(n)
		}
		synctest.Wait()
		start := time.Now()
		err := p.Shutdown(context.Background())
		if err != context.DeadlineExceeded || time.Since(start) != 5*time.Second {
			t.Errorf("Shutdown = %v after %v; want DeadlineExceeded after 5s", err, time.Since(start))
		}
		if got := log.times(); len(got) != 1 {
			t.Errorf("%d jobs started; want 1 (the burst)", len(got))
		}
		// The job waiting for a token and the queued one.
		checkDrops(t, drops, 2, workpool.ReasonShutdown, context.DeadlineExceeded)
		checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: workpool.DefaultQueueSize,
			Submitted: 3, Completed: 1, Dropped: 2})
	})
}

func TestSynctestRateLimitBaseCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var drops []error
		p := startPool(t, func(context.Context, int) error { return nil }, workpool.WithWorkers(2), workpool.WithContext(ctx),
			workpool.WithRateLimit(0.1, 1),
			workpool.OnDrop(func(n int, err error) { mu.Lock(); drops = append(drops, err); mu.Unlock() }))
		for n := range 4 {
			p.Submit(n)
		}
		synctest.Wait()
		cancel()
		synctest.Wait()
		mu.Lock()
		checkDrops(t, drops, 3, workpool.ReasonCanceled, context.Canceled) // at once
		mu.Unlock()
		if err := p.Shutdown(context.Background()); err != context.Canceled {
			t.Errorf("Shutdown = %v", err)
		}
	})
}

func TestRateLimitValidation(t *testing.T) {
	h := func(context.Context, int) error { return nil }
	tests := []struct {
		limit rate.Limit
		burst int
		want  string
	}{
		{0, 1, "workpool: rate limit must be positive (rate.Inf for none), got 0"},
		{-5, 1, "rate limit must be positive (rate.Inf for none), got -5"},
		{rate.Limit(math.NaN()), 1, "got NaN"},
		{10, 0, "workpool: rate limit burst must be at least 1, got 0"},
	}
	for _, tt := range tests {
		if _, err := workpool.New(h, workpool.WithRateLimit(tt.limit, tt.burst)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WithRateLimit(%v, %d): %v; want %q", tt.limit, tt.burst, err, tt.want)
		}
	}
	p := newPool(t, h, workpool.WithRateLimit(rate.Inf, 0))
	if l, _ := p.RateLimit(); l != rate.Inf {
		t.Errorf("WithRateLimit(Inf): RateLimit() = %v", l)
	}
	if err := p.SetRateLimit(5, 0); err == nil || !strings.Contains(err.Error(), "burst must be at least 1") {
		t.Errorf("SetRateLimit(5, 0) = %v", err)
	}
	if l, _ := p.RateLimit(); l != rate.Inf {
		t.Errorf("a refused SetRateLimit changed the limit to %v", l)
	}
}
