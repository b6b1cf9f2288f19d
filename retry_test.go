package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// checkDrops checks that OnDrop got want jobs, each with reason and an
// error that matches is.
func checkDrops(t *testing.T, drops []error, want int, reason workpool.DropReason, is error) {
	t.Helper()
	if len(drops) != want {
		t.Errorf("%d drops; want %d", len(drops), want)
	}
	for _, err := range drops {
		if !isDrop(err, reason, is) {
			t.Errorf("drop %v; want reason %v matching %v", err, reason, is)
		}
	}
}

// startPool is newPool, started.
func startPool[T any](t *testing.T, h workpool.Handler[T], opts ...workpool.Option) *workpool.Pool[T] {
	t.Helper()
	p := newPool(t, h, opts...)
	p.Start()
	return p
}

func TestSynctestRetryPermanentAndSuccess(t *testing.T) {
	errBadAddress := errors.New("bad address")
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		runs := map[int][]int{} // job -> attempts seen
		var onError []error
		p := startPool(t, func(ctx context.Context, n int) error {
			a := workpool.Attempt(ctx)
			mu.Lock()
			runs[n] = append(runs[n], a)
			mu.Unlock()
			switch {
			case n == 1: // bad input: never worth a retry
				return workpool.Permanent(errBadAddress)
			case n == 2 && a < 3: // transient twice, then delivered
				return errTransient
			}
			return nil
		}, workpool.WithWorkers(2), workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 5}),
			workpool.OnError(func(n int, err error) {
				mu.Lock()
				onError = append(onError, err)
				mu.Unlock()
			}))
		for n := range 3 {
			if err := p.Submit(n); err != nil {
				t.Fatal(err)
			}
		}
		shutdown(t, p)
		want := map[int][]int{0: {1}, 1: {1}, 2: {1, 2, 3}}
		for n, w := range want {
			if !slices.Equal(runs[n], w) {
				t.Errorf("job %d ran attempts %v; want %v", n, runs[n], w)
			}
		}
		if len(onError) != 1 {
			t.Fatalf("OnError called %d times; want once, for the permanent error", len(onError))
		}
		var pe *workpool.PermanentError
		if err := onError[0]; !errors.Is(err, errBadAddress) || !errors.As(err, &pe) || !workpool.IsPermanent(err) ||
			err.Error() != errBadAddress.Error() {
			t.Errorf("OnError got %v; want the permanent error, matching errBadAddress", err)
		}
		checkStats(t, p.Stats(), workpool.Stats{Workers: 2, QueueCapacity: workpool.DefaultQueueSize,
			Submitted: 3, Completed: 3, Failed: 1, Retries: 2})
	})
}

func TestPermanent(t *testing.T) {
	if workpool.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if workpool.IsPermanent(errTransient) || workpool.IsPermanent(nil) {
		t.Error("IsPermanent of a plain error or nil")
	}
	wrapped := fmt.Errorf("send: %w", workpool.Permanent(errTransient))
	if !workpool.IsPermanent(wrapped) || !errors.Is(wrapped, errTransient) {
		t.Errorf("a wrapped permanent error: IsPermanent %v, Is %v", workpool.IsPermanent(wrapped), errors.Is(wrapped, errTransient))
	}
	if got := workpool.Attempt(context.Background()); got != 1 {
		t.Errorf("Attempt(Background) = %d; want 1", got)
	}
}

// TestSynctestRetryHoldsNoWorker: a job waiting for its retry leaves the
// only worker to the jobs behind it.
func TestSynctestRetryHoldsNoWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var order []string
		p := startPool(t, func(ctx context.Context, n int) error {
			mu.Lock()
			order = append(order, fmt.Sprintf("%d@%v#%d", n, time.Since(start), workpool.Attempt(ctx)))
			mu.Unlock()
			if n == 0 && workpool.Attempt(ctx) == 1 {
				return errTransient
			}
			time.Sleep(time.Second) // real work, on the worker
			return nil
		}, workpool.WithWorkers(1), workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: 1500 * time.Millisecond}))
		for n := range 3 {
			p.Submit(n)
		}
		shutdown(t, p)
		// Job 0 fails at 0s and waits 1.5s; jobs 1 and 2 run at 0s and 1s;
		// the retry is due at 1.5s and runs when the worker is free, at 2s,
		// before anything queued later.
		want := []string{"0@0s#1", "1@0s#1", "2@1s#1", "0@2s#2"}
		if !slices.Equal(order, want) {
			t.Errorf("ran %v; want %v", order, want)
		}
	})
}

func TestSynctestRetryOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		policy   workpool.RetryPolicy
		fail     func(ctx context.Context) error // the failing attempt
		wantRuns int
		wantErr  error // what OnError gets, by errors.Is; nil for *PanicError
	}{
		{"error", workpool.RetryPolicy{MaxAttempts: 3}, func(context.Context) error { return errTransient }, 3, errTransient},
		{"timeout", workpool.RetryPolicy{MaxAttempts: 3}, func(context.Context) error { time.Sleep(2 * time.Second); return nil }, 3, workpool.ErrJobTimeout},
		{"goexit", workpool.RetryPolicy{MaxAttempts: 3}, func(context.Context) error { runtime.Goexit(); return nil }, 3, workpool.ErrGoexit},
		{"panic not retried", workpool.RetryPolicy{MaxAttempts: 3}, func(context.Context) error { panic("bug") }, 1, nil},
		{"panic retried", workpool.RetryPolicy{MaxAttempts: 3, RetryPanics: true}, func(context.Context) error { panic("bug") }, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var runs atomic.Int32
				var got []error
				p := startPool(t, func(ctx context.Context, n int) error {
					runs.Add(1)
					return tt.fail(ctx)
				}, workpool.WithWorkers(1), workpool.WithJobTimeout(time.Second), workpool.WithRetry(tt.policy),
					workpool.OnError(func(n int, err error) { got = append(got, err) }))
				p.Submit(1)
				shutdown(t, p)
				if int(runs.Load()) != tt.wantRuns {
					t.Errorf("ran %d times; want %d", runs.Load(), tt.wantRuns)
				}
				if len(got) != 1 {
					t.Fatalf("OnError called %d times; want 1", len(got))
				}
				var pe *workpool.PanicError
				if (tt.wantErr == nil && !errors.As(got[0], &pe)) || (tt.wantErr != nil && !errors.Is(got[0], tt.wantErr)) {
					t.Errorf("OnError got %v; want %v", got[0], tt.wantErr)
				}
				s := p.Stats()
				if s.Completed != 1 || s.Failed != 1 || s.Retries != uint64(tt.wantRuns-1) || s.Submitted != 1 {
					t.Errorf("stats %+v; want one job, failed, with %d retries", s, tt.wantRuns-1)
				}
			})
		})
	}
}

// TestSynctestRetryShutdown: a graceful Shutdown runs the retries due before
// its deadline; at the deadline the jobs still waiting go to OnDrop with the
// shutdown's reason, and the identity holds.
func TestSynctestRetryShutdown(t *testing.T) {
	tests := []struct {
		name     string
		timeout  time.Duration // from the Shutdown call at 4s
		wantErr  error
		wantAt   time.Duration // when Shutdown returns
		wantDrop bool          // job 1, due at 6s, is dropped
	}{
		{"retry before the deadline", 5 * time.Second, nil, 6 * time.Second, false},
		{"retry after the deadline", time.Second, context.DeadlineExceeded, 5 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var mu sync.Mutex
				ran := map[int]time.Duration{} // job -> when its retry succeeded
				var drops []error
				p := startPool(t, func(ctx context.Context, n int) error {
					if workpool.Attempt(ctx) == 1 {
						return errTransient
					}
					mu.Lock()
					ran[n] = time.Since(start)
					mu.Unlock()
					return nil
				}, workpool.WithWorkers(2), workpool.WithShutdownTimeout(tt.timeout),
					workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: 2 * time.Second}),
					workpool.OnDrop(func(n int, err error) {
						if n != 1 {
							t.Errorf("job %d dropped", n)
						}
						drops = append(drops, err)
					}))
				p.Submit(0) // fails at 0s, due at 2s
				time.Sleep(4 * time.Second)
				p.Submit(1) // fails at 4s, due at 6s
				synctest.Wait()
				if s := p.Stats(); s.Retrying != 1 || s.Submitted != s.Completed+s.Dropped+uint64(s.Queued)+uint64(s.Retrying) {
					t.Errorf("at rest with a retry waiting: %+v", s)
				}
				err := p.Shutdown(context.Background())
				if err != tt.wantErr || time.Since(start) != tt.wantAt {
					t.Errorf("Shutdown = %v at %v; want %v at %v", err, time.Since(start), tt.wantErr, tt.wantAt)
				}
				if at := ran[0]; at != 2*time.Second {
					t.Errorf("job 0's retry ran at %v; want 2s", at)
				}
				if _, ok := ran[1]; ok == tt.wantDrop {
					t.Errorf("job 1's retry ran: %v; want %v", ok, !tt.wantDrop)
				}
				if tt.wantDrop && (len(drops) != 1 || !isDrop(drops[0], workpool.ReasonShutdown, context.DeadlineExceeded)) {
					t.Errorf("drops %v; want job 1 with reason shutdown", drops)
				}
				s := p.Stats()
				if s.Submitted != s.Completed+s.Dropped || s.Retrying != 0 || s.Retries != 2 {
					t.Errorf("after Shutdown: %+v", s)
				}
			})
		})
	}
}

// TestSynctestRetryBaseCancel: jobs waiting for a retry when the base
// context ends go to OnDrop with its error.
func TestSynctestRetryBaseCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var drops []error
		p := startPool(t, func(ctx context.Context, n int) error { return errTransient },
			workpool.WithContext(ctx), workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Minute}),
			workpool.OnDrop(func(n int, err error) { drops = append(drops, err) }))
		for n := range 4 {
			p.Submit(n)
		}
		synctest.Wait()
		if got := p.Stats().Retrying; got != 4 {
			t.Fatalf("Retrying = %d; want 4", got)
		}
		cancel()
		synctest.Wait()
		checkDrops(t, drops, 4, workpool.ReasonCanceled, context.Canceled) // the waiting jobs
		if err := p.Shutdown(context.Background()); !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown = %v; want context.Canceled", err)
		}
		checkStats(t, p.Stats(), workpool.Stats{Workers: workpool.DefaultWorkers, QueueCapacity: workpool.DefaultQueueSize,
			Submitted: 4, Dropped: 4, Retries: 4})
	})
}

func TestRetryPolicyValidation(t *testing.T) {
	h := func(context.Context, int) error { return nil }
	tests := []struct {
		policy workpool.RetryPolicy
		want   string
	}{
		{workpool.RetryPolicy{MaxAttempts: -1}, "workpool: retry policy: max attempts must be between 0 and 2147483647, got -1"},
		{workpool.RetryPolicy{InitialBackoff: -1}, "initial backoff must not be negative, got -1ns"},
		{workpool.RetryPolicy{MaxBackoff: -time.Second}, "max backoff must not be negative, got -1s"},
		{workpool.RetryPolicy{InitialBackoff: 2 * time.Second, MaxBackoff: time.Second}, "max backoff 1s is less than initial backoff 2s"},
		{workpool.RetryPolicy{Multiplier: 0.5}, "multiplier must be at least 1, got 0.5"},
		{workpool.RetryPolicy{Multiplier: math.NaN()}, "multiplier must be at least 1, got NaN"},
		{workpool.RetryPolicy{Jitter: 1.5}, "jitter must be between 0 and 1, got 1.5"},
		{workpool.RetryPolicy{Jitter: -0.1}, "jitter must be between 0 and 1, got -0.1"},
	}
	if strconv.IntSize == 64 { // a 32-bit int cannot hold one past the bound
		tests = append(tests, struct {
			policy workpool.RetryPolicy
			want   string
		}{workpool.RetryPolicy{MaxAttempts: int(beyondAttempts)}, "max attempts must be between 0 and 2147483647, got 2147483648"})
	}
	for _, tt := range tests {
		_, err := workpool.New(h, workpool.WithRetry(tt.policy))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(WithRetry(%+v)) = %v; want an error containing %q", tt.policy, err, tt.want)
		}
	}
	// Several bad fields: each is named.
	_, err := workpool.New(h, workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: -1, Jitter: 2}))
	if err == nil || !strings.Contains(err.Error(), "max attempts") || !strings.Contains(err.Error(), "jitter") {
		t.Errorf("two bad fields: %v", err)
	}
}

// TestSynctestRetryJitter: with Jitter j, each wait is within [d(1-j), d].
func TestSynctestRetryJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const jobs = 50
		var mu sync.Mutex
		first := map[int]time.Time{}
		var waits []time.Duration
		p := startPool(t, func(ctx context.Context, n int) error {
			mu.Lock()
			defer mu.Unlock()
			if workpool.Attempt(ctx) == 1 {
				first[n] = time.Now()
				return errTransient
			}
			waits = append(waits, time.Since(first[n]))
			return nil
		}, workpool.WithWorkers(jobs), workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Second, Jitter: 0.5}))
		for n := range jobs {
			p.Submit(n)
		}
		shutdown(t, p)
		distinct := map[time.Duration]bool{}
		for _, w := range waits {
			distinct[w] = true
			if w < 500*time.Millisecond || w > time.Second {
				t.Errorf("wait %v outside [500ms, 1s]", w)
			}
		}
		if len(waits) != jobs || len(distinct) < jobs/2 {
			t.Errorf("%d waits, %d distinct; want %d, spread by the jitter", len(waits), len(distinct), jobs)
		}
	})
}

// retryEvents is a Metrics with the RetryMetrics extension that counts.
type retryEvents struct {
	workpool.NopMetrics
	retried, ended, finished atomic.Int64
	delays                   sync.Map
}

func (m *retryEvents) JobRetried(d time.Duration)                  { m.retried.Add(1); m.delays.Store(d, true) }
func (m *retryEvents) RetryEnded()                                 { m.ended.Add(1) }
func (m *retryEvents) JobFinished(time.Duration, workpool.Outcome) { m.finished.Add(1) }

func TestSynctestRetryMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &retryEvents{}
		p := startPool(t, func(ctx context.Context, n int) error {
			if workpool.Attempt(ctx) < 3 {
				return errTransient
			}
			return nil
		}, workpool.WithMetrics(m), workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second}))
		for n := range 5 {
			p.Submit(n)
		}
		synctest.Wait()
		if r, e := m.retried.Load(), m.ended.Load(); r-e != int64(p.Stats().Retrying) || r != 5 {
			t.Errorf("JobRetried %d, RetryEnded %d; want their difference = Retrying (%d)", r, e, p.Stats().Retrying)
		}
		shutdown(t, p)
		s := p.Stats()
		if m.retried.Load() != 10 || m.ended.Load() != 10 || uint64(m.retried.Load()) != s.Retries {
			t.Errorf("JobRetried %d, RetryEnded %d, Stats.Retries %d; want 10 each", m.retried.Load(), m.ended.Load(), s.Retries)
		}
		if m.finished.Load() != 15 {
			t.Errorf("JobFinished %d times; want 15, once per attempt", m.finished.Load())
		}
		for _, d := range []time.Duration{time.Second, 2 * time.Second} {
			if _, ok := m.delays.Load(d); !ok {
				t.Errorf("no JobRetried with delay %v", d)
			}
		}
	})
}
