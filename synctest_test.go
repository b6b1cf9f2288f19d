package workpool_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/workpool-go/workpool"
)

// Deadline logic on synctest's virtual clock: each test states exactly when
// something must happen, and never depends on the machine's speed.

// holdPool returns a started pool with one worker whose jobs ignore their
// context until release is closed (the caller closes it).
func holdPool(t *testing.T, release <-chan struct{}, opts ...workpool.Option) *workpool.Pool[int] {
	t.Helper()
	opts = append([]workpool.Option{workpool.WithWorkers(1)}, opts...)
	p, err := workpool.New(func(ctx context.Context, n int) error { <-release; return nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	return p
}

func TestSynctestShutdownDeadline(t *testing.T) {
	tests := []struct {
		name            string
		shutdownTimeout time.Duration
		ctxTimeout      time.Duration // 0: context.Background()
		want            time.Duration // when Shutdown returns
	}{
		{"shutdown timeout", 5 * time.Second, 0, 5 * time.Second},
		{"ctx earlier", 5 * time.Second, 2 * time.Second, 2 * time.Second},
		{"timeout earlier", 3 * time.Second, 7 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				defer close(release)
				var dropped atomic.Int32
				p := holdPool(t, release, workpool.WithShutdownTimeout(tt.shutdownTimeout),
					workpool.OnDrop(func(int, error) { dropped.Add(1) }))
				for i := range 3 {
					if err := p.Submit(i); err != nil {
						t.Fatal(err)
					}
				}
				synctest.Wait()
				ctx := context.Background()
				if tt.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
					defer cancel()
				}
				start := time.Now()
				err := p.Shutdown(ctx)
				if took := time.Since(start); took != tt.want {
					t.Errorf("Shutdown returned after %v; want exactly %v", took, tt.want)
				}
				if err != context.DeadlineExceeded {
					t.Errorf("Shutdown = %v; want context.DeadlineExceeded", err)
				}
				if got := dropped.Load(); got != 2 {
					t.Errorf("dropped %d queued jobs before Shutdown returned; want 2", got)
				}
			})
		})
	}
}

// TestSynctestShutdownTimeoutFromFirstCall: the shutdown timeout counts from
// the first Shutdown call, so a later call gives up at the same moment.
func TestSynctestShutdownTimeoutFromFirstCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		p := holdPool(t, release, workpool.WithShutdownTimeout(10*time.Second))
		if err := p.Submit(1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		start := time.Now()
		first := make(chan error, 1)
		go func() { first <- p.Shutdown(context.Background()) }()
		time.Sleep(4 * time.Second)
		err := p.Shutdown(context.Background())
		if took := time.Since(start); took != 10*time.Second || err != context.DeadlineExceeded {
			t.Errorf("second Shutdown = %v after %v; want DeadlineExceeded at 10s", err, took)
		}
		if err := <-first; err != context.DeadlineExceeded {
			t.Errorf("first Shutdown = %v; want DeadlineExceeded", err)
		}
	})
}

// TestSynctestShutdownDrainsInTime: with handlers that finish before the
// deadline, Shutdown returns nil the moment the last one does.
func TestSynctestShutdownDrainsInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := workpool.New(func(ctx context.Context, n int) error {
			time.Sleep(time.Second)
			return ctx.Err() // still live while draining
		}, workpool.WithWorkers(2), workpool.WithShutdownTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		for i := range 6 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v; want nil", err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("Shutdown took %v; want 3s (6 jobs of 1s on 2 workers)", took)
		}
		checkStats(t, p.Stats(), workpool.Stats{Workers: 2, QueueCapacity: 1000, Submitted: 6, Completed: 6})
	})
}

func TestSynctestJobTimeout(t *testing.T) {
	const timeout = time.Second
	bucket := timeout / 64 // documented rounding
	tests := []struct {
		name    string
		handler func(ctx context.Context) error
		wantErr error // what OnError gets; nil: not called
		wantAt  time.Duration
	}{
		{"watches ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			context.DeadlineExceeded, timeout + bucket},
		{"returns late", func(ctx context.Context) error { time.Sleep(2 * timeout); return nil },
			workpool.ErrJobTimeout, 2 * timeout},
		{"returns at the timeout", func(ctx context.Context) error { time.Sleep(timeout); return ctx.Err() },
			nil, timeout},
		{"returns early", func(ctx context.Context) error { time.Sleep(timeout / 2); return ctx.Err() },
			nil, timeout / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var deadline time.Time
				var gotErr error
				var start, end time.Time
				p, err := workpool.New(func(ctx context.Context, n int) error {
					start = time.Now()
					deadline, _ = ctx.Deadline()
					defer func() { end = time.Now() }()
					return tt.handler(ctx)
				}, workpool.WithWorkers(1), workpool.WithJobTimeout(timeout),
					workpool.OnError(func(n int, err error) { gotErr = err }))
				if err != nil {
					t.Fatal(err)
				}
				p.Start()
				if err := p.Submit(1); err != nil {
					t.Fatal(err)
				}
				shutdown(t, p)
				if d := deadline.Sub(start); d < timeout || d > timeout+bucket {
					t.Errorf("job deadline %v after start; want %v..%v", d, timeout, timeout+bucket)
				}
				if took := end.Sub(start); took != tt.wantAt {
					t.Errorf("handler ran %v; want %v", took, tt.wantAt)
				}
				if gotErr != tt.wantErr {
					t.Errorf("OnError got %v; want %v", gotErr, tt.wantErr)
				}
			})
		})
	}
}

func TestSynctestSubmitWaitDeadline(t *testing.T) {
	tests := []struct {
		name     string
		freeAt   time.Duration // when the running job ends and frees room
		ctxAfter time.Duration
		want     error
		wantAt   time.Duration
	}{
		{"deadline first", 3 * time.Second, time.Second, context.DeadlineExceeded, time.Second},
		{"room first", time.Second, 3 * time.Second, nil, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, err := workpool.New(func(ctx context.Context, n int) error {
					if n == 0 {
						time.Sleep(tt.freeAt)
					}
					return nil
				}, workpool.WithWorkers(1), workpool.WithQueueSize(1))
				if err != nil {
					t.Fatal(err)
				}
				p.Start()
				defer shutdown(t, p)
				if err := p.Submit(0); err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // job 0 runs
				if err := p.Submit(1); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), tt.ctxAfter)
				defer cancel()
				start := time.Now()
				err = p.SubmitWait(ctx, 2)
				if took := time.Since(start); err != tt.want || took != tt.wantAt {
					t.Errorf("SubmitWait = %v after %v; want %v after %v", err, took, tt.want, tt.wantAt)
				}
			})
		})
	}
}

// TestSynctestBaseCancel: cancelling the base context ends running jobs'
// contexts at that instant and drops the queued jobs without running them.
func TestSynctestBaseCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, cancel := context.WithCancel(context.Background())
		defer cancel()
		var sawAt time.Duration
		start := time.Now()
		var ran, dropped atomic.Int32
		p, err := workpool.New(func(ctx context.Context, n int) error {
			ran.Add(1)
			<-ctx.Done()
			sawAt = time.Since(start)
			return ctx.Err()
		}, workpool.WithWorkers(1), workpool.WithContext(base), workpool.WithJobTimeout(time.Hour),
			workpool.OnDrop(func(int, error) { dropped.Add(1) }))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		for i := range 4 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		time.AfterFunc(2*time.Second, cancel)
		if err := p.Shutdown(context.Background()); err != context.Canceled {
			t.Errorf("Shutdown = %v; want context.Canceled", err)
		}
		if sawAt != 2*time.Second {
			t.Errorf("running job saw cancellation at %v; want 2s", sawAt)
		}
		if ran.Load() != 1 || dropped.Load() != 3 {
			t.Errorf("ran %d, dropped %d; want 1 and 3", ran.Load(), dropped.Load())
		}
	})
}

// TestSynctestShutdownTimeoutAfterBaseCancel: the shutdown timeout counts
// from the first Shutdown call, as documented. It used to count from when
// intake closed, so a Shutdown called more than the timeout after the base
// context ended gave up at once, with DeadlineExceeded, while a handler was
// still running, instead of waiting for the workers and returning Canceled.
func TestSynctestShutdownTimeoutAfterBaseCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := workpool.New(func(ctx context.Context, n int) error {
			time.Sleep(time.Minute) // ignores its context
			return nil
		}, workpool.WithWorkers(1), workpool.WithContext(base), workpool.WithShutdownTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		if err := p.Submit(1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		start := time.Now()
		cancel()
		time.Sleep(31 * time.Second)
		err = p.Shutdown(context.Background())
		if took := time.Since(start); err != context.Canceled || took != time.Minute {
			t.Errorf("Shutdown 31s after the base context ended = %v at %v; want Canceled at 1m, when the handler returns", err, took)
		}
		time.Sleep(time.Minute) // lets the handler finish if Shutdown did not wait
	})
}
