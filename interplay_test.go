package workpool_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/workpool-go/workpool"
)

// Regression tests for interactions between the features of issue 13,
// found in review: Resize with retries and job timeouts, and hooks that end
// their goroutine while retries are dropped.

// TestResizeRetireKeepsRetry: a worker past the size after Resize
// schedules a retry once intake closed and the staying worker, seeing
// nothing waiting, exited: it must stay to run the retry, not retire
// (found in review).
func TestResizeRetireKeepsRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rel0, rel1 := make(chan struct{}), make(chan struct{})
		var second atomic.Bool
		p, err := workpool.New(func(ctx context.Context, n int) error {
			if workpool.Attempt(ctx) == 2 {
				second.Store(true)
				return nil
			}
			if n == 0 {
				<-rel0
				return nil
			}
			<-rel1
			return errors.New("transient")
		}, workpool.WithWorkers(1), workpool.WithShutdownTimeout(time.Minute),
			workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		p.Submit(0) // worker 0
		synctest.Wait()
		p.Resize(2)
		p.Submit(1) // worker 1 (worker 0 is busy)
		synctest.Wait()
		p.Resize(1) // worker 1 retires after job 1
		var serr error
		done := make(chan struct{})
		go func() { defer close(done); serr = p.Shutdown(context.Background()) }()
		synctest.Wait()
		close(rel0) // worker 0 finishes; nothing waits yet: it exits
		synctest.Wait()
		close(rel1) // job 1 fails: retry scheduled; worker 1 retires
		<-done
		if serr != nil || !second.Load() {
			t.Errorf("Shutdown = %v, retry ran %v; want nil, true (backoff 1s, deadline 1m)", serr, second.Load())
		}
	})
}

// TestResizeGrowBackFreshStart: a worker that retired right after a
// successful job, grown back a minute later, must time its first job from
// that job's start, not from its last job's end (found in review).
func TestResizeGrowBackFreshStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relA, relC := make(chan struct{}), make(chan struct{})
		var mu sync.Mutex
		ctxErr := map[int]error{}
		var timeouts atomic.Int32
		p, err := workpool.New(func(ctx context.Context, n int) error {
			mu.Lock()
			ctxErr[n] = ctx.Err()
			mu.Unlock()
			switch n {
			case 0, 1:
				<-relA
			case 2:
				<-relC
			}
			return nil
		}, workpool.WithWorkers(2), workpool.WithJobTimeout(10*time.Second),
			workpool.OnError(func(n int, err error) {
				if errors.Is(err, workpool.ErrJobTimeout) {
					timeouts.Add(1)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		p.Submit(0)
		p.Submit(1)
		synctest.Wait()
		p.Resize(1)
		close(relA) // both succeed; worker 1 retires with fresh=true
		synctest.Wait()
		time.Sleep(time.Minute)
		p.Submit(2) // worker 0 busy with it
		synctest.Wait()
		p.Submit(3) // queued
		p.Resize(2) // worker 1 comes back and takes job 3
		synctest.Wait()
		close(relC)
		synctest.Wait()
		p.Shutdown(context.Background())
		mu.Lock()
		defer mu.Unlock()
		if ctxErr[3] != nil || timeouts.Load() != 0 {
			t.Errorf("job 3 started with ctx.Err() = %v, %d timeouts; want nil, 0", ctxErr[3], timeouts.Load())
		}
	})
}

// TestRetryDropGoexitStillDrains: OnDrop ends its goroutine
// (runtime.Goexit) while a hard stop drops a waiting retry; the goroutine
// that takes over must drain the queue too (found in review).
func TestRetryDropGoexitStillDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var drops atomic.Int32
		p, err := workpool.New(func(ctx context.Context, n int) error {
			if n == 0 {
				return errors.New("transient")
			}
			<-ctx.Done()
			return ctx.Err()
		}, workpool.WithWorkers(1), workpool.WithShutdownTimeout(time.Hour),
			workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Minute}),
			workpool.OnDrop(func(n int, err error) {
				drops.Add(1)
				if n == 0 {
					runtime.Goexit()
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		p.Submit(0)
		synctest.Wait() // job 0 waits for its retry
		for n := 1; n <= 5; n++ {
			p.Submit(n) // 1 runs (blocks on ctx), 2..5 queued
		}
		synctest.Wait()
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			p.Shutdown(ctx) // ended by OnDrop(0)
		}()
		<-done
		synctest.Wait()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		s := p.Stats()
		if s.Queued != 0 || s.Submitted != s.Completed+s.Dropped {
			t.Errorf("jobs left in the queue after the hard stop with no worker left: %+v", s)
		}
		if drops.Load() != 5 {
			t.Errorf("%d drops; want 5: the waiting retry and the 4 queued jobs", drops.Load())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a second Shutdown = %v; want the first's DeadlineExceeded", err)
		}
	})
}
