package workpool_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workpool-go/workpool"
)

var stressJobs = flag.Int("stress.jobs", 0,
	"jobs in TestStress; 0 means 1e6 (2e4 with -short)")

// TestStress pushes a million jobs with mixed outcomes through pools from 8
// submitting goroutines while Shutdown races them (a graceful Shutdown under
// each drop policy, and one whose deadline passes mid-run), and checks with a
// record per job that every accepted job ran or was dropped exactly once,
// every refused one did neither, and Stats and the hooks agree.
func TestStress(t *testing.T) {
	n := *stressJobs
	if n == 0 {
		n = 1_000_000 // about 6s under -race on 2 cores
		if testing.Short() {
			n = 20_000
		}
	}
	for _, policy := range []workpool.DropPolicy{workpool.DropNewest, workpool.DropOldest} {
		t.Run(fmt.Sprintf("policy=%v", policy), func(t *testing.T) { stress(t, policy, n*2/5, false) })
	}
	// A hard stop under load: jobs that block until their context ends, a
	// 1ms job timeout, and a Shutdown whose 1ms deadline passes mid-run.
	t.Run("hard-stop", func(t *testing.T) { stress(t, workpool.DropOldest, n/5, true) })
}

// stressKind picks job i's behaviour: mostly successes, some errors, a few
// panics and Goexits (they cost a stack trace or a goroutine each).
func stressKind(i int) jobKind {
	switch {
	case i%4099 == 0:
		return jobGoexit
	case i%1021 == 0:
		return jobPanic
	case i%7 == 0:
		return jobError
	}
	return jobOK
}

func stress(t *testing.T, policy workpool.DropPolicy, n int, hard bool) {
	kind := func(i int) jobKind {
		switch {
		case hard && i == 1:
			return jobHold // keeps a worker past Shutdown's deadline
		case hard && i%211 == 0:
			return jobBlock
		}
		return stressKind(i)
	}
	hold, holding := make(chan struct{}), make(chan struct{})
	const submitters = 8
	ran := make([]atomic.Uint32, n)
	dropped := make([]atomic.Uint32, n)
	refused := make([]error, n) // each index written by one submitter
	var onErrors, panics, deadlineDrops atomic.Uint64
	var active, maxActive atomic.Int32

	p, err := workpool.New(func(ctx context.Context, i int) error {
		ran[i].Add(1)
		cur := active.Add(1)
		for m := maxActive.Load(); cur > m && !maxActive.CompareAndSwap(m, cur); m = maxActive.Load() {
		}
		defer active.Add(-1)
		switch kind(i) {
		case jobBlock:
			<-ctx.Done()
			return ctx.Err()
		case jobHold:
			close(holding)
			<-hold
			return nil
		case jobGoexit:
			runtime.Goexit()
		case jobPanic:
			panic(i)
		case jobError:
			return errFuzz
		}
		return nil
	}, workpool.WithWorkers(4), workpool.WithQueueSize(256), workpool.WithDropPolicy(policy),
		workpool.WithJobTimeout(time.Millisecond),
		workpool.OnDrop(func(i int, err error) {
			dropped[i].Add(1)
			if !errors.Is(err, workpool.ErrQueueFull) {
				deadlineDrops.Add(1)
			}
		}),
		workpool.OnError(func(i int, err error) {
			onErrors.Add(1)
			var pe *workpool.PanicError
			if errors.As(err, &pe) {
				panics.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()

	begin := time.Now()
	if hard {
		// Job 1 holds a worker from before the submitters start (submitted
		// later it could be evicted) until Shutdown has returned.
		refused[1] = p.Submit(1)
		recv(t, holding, "job 1 to start")
	}
	var submitted atomic.Int64
	shutdownAt := int64(n) * 9 / 10
	if hard {
		shutdownAt = int64(n) / 2
	}
	shut := make(chan error, 1)
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := g; i < n; i += submitters {
				if hard && i == 1 {
					continue
				}
				if submitted.Add(1) == shutdownAt {
					// Shutdown races the submitters for the last tenth.
					go func() {
						ctx := context.Background()
						if hard {
							var cancel context.CancelFunc
							ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
							defer cancel()
						}
						shut <- p.Shutdown(ctx)
					}()
				}
				if i%3 == 0 {
					refused[i] = p.SubmitWait(ctx, i)
				} else {
					refused[i] = p.Submit(i)
				}
			}
		})
	}
	wg.Wait()
	shutErr := recv(t, shut, "Shutdown")
	close(hold)
	switch {
	case shutErr == nil && (hard || deadlineDrops.Load() > 0):
		t.Errorf("Shutdown = nil with a job holding a worker, or %d jobs dropped by its deadline", deadlineDrops.Load())
	case shutErr != nil && (!hard || shutErr != context.DeadlineExceeded):
		t.Fatalf("Shutdown = %v", shutErr)
	case shutErr != nil:
		// The blocked handlers see the hard stop; wait for them to return.
		if err := p.Shutdown(context.Background()); err != context.DeadlineExceeded {
			t.Errorf("Shutdown after a hard stop = %v; want that stop's DeadlineExceeded", err)
		}
	}
	elapsed := time.Since(begin)

	var want workpool.Stats
	want.Workers, want.QueueCapacity = 4, 256
	bad := 0
	for i := range n {
		r, d := ran[i].Load(), dropped[i].Load()
		if err := refused[i]; err != nil {
			want.Rejected++
			full := err == workpool.ErrQueueFull && policy == workpool.DropNewest && i%3 != 0
			if (!full && err != workpool.ErrClosed) || r+d != 0 {
				bad++
				if bad <= 10 {
					t.Errorf("job %d refused with %v; ran %d, dropped %d", i, err, r, d)
				}
			}
			continue
		}
		want.Submitted++
		want.Completed += uint64(r)
		want.Dropped += uint64(d)
		if r+d != 1 {
			bad++
			if bad <= 10 {
				t.Errorf("job %d accepted; ran %d times, dropped %d times", i, r, d)
			}
		}
		if r == 1 && kind(i) == jobPanic {
			want.Panicked++
		}
	}
	want.Failed = onErrors.Load()
	if bad > 10 {
		t.Errorf("... %d jobs wrong in all", bad)
	}
	if want.Panicked != panics.Load() {
		t.Errorf("panics seen by OnError = %d; panicking jobs that ran = %d", panics.Load(), want.Panicked)
	}
	checkStats(t, p.Stats(), want)
	if got := maxActive.Load(); got > 4 {
		t.Errorf("%d handlers ran at once; want at most 4", got)
	}
	t.Logf("%d jobs in %v (%.0f/s), Shutdown = %v: %+v", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), shutErr, want)
}
