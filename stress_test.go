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

// TestStress pushes a million jobs with mixed outcomes through a pool from 8
// submitting goroutines while Shutdown races them, and checks with a record
// per job that every accepted job ran or was dropped exactly once, every
// refused one did neither, and Stats and the hooks agree.
func TestStress(t *testing.T) {
	n := *stressJobs
	if n == 0 {
		n = 1_000_000 // about 6s under -race on 2 cores
		if testing.Short() {
			n = 20_000
		}
	}
	for _, policy := range []workpool.DropPolicy{workpool.DropNewest, workpool.DropOldest} {
		t.Run(fmt.Sprintf("policy=%v", policy), func(t *testing.T) { stress(t, policy, n/2) })
	}
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

func stress(t *testing.T, policy workpool.DropPolicy, n int) {
	const submitters = 8
	ran := make([]atomic.Uint32, n)
	dropped := make([]atomic.Uint32, n)
	refused := make([]error, n) // each index written by one submitter
	var onErrors, panics atomic.Uint64
	var active, maxActive atomic.Int32

	p, err := workpool.New(func(ctx context.Context, i int) error {
		ran[i].Add(1)
		cur := active.Add(1)
		for m := maxActive.Load(); cur > m && !maxActive.CompareAndSwap(m, cur); m = maxActive.Load() {
		}
		defer active.Add(-1)
		switch stressKind(i) {
		case jobGoexit:
			runtime.Goexit()
		case jobPanic:
			panic(i)
		case jobError:
			return errFuzz
		}
		return nil
	}, workpool.WithWorkers(4), workpool.WithQueueSize(256), workpool.WithDropPolicy(policy),
		workpool.OnDrop(func(i int, err error) { dropped[i].Add(1) }),
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
	var submitted atomic.Int64
	shutdownAt := int64(n) * 9 / 10
	shut := make(chan error, 1)
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := g; i < n; i += submitters {
				if submitted.Add(1) == shutdownAt {
					// Shutdown races the submitters for the last tenth.
					go func() { shut <- p.Shutdown(context.Background()) }()
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
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown = %v; want nil", err)
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
		if r == 1 && stressKind(i) == jobPanic {
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
	t.Logf("%d jobs in %v (%.0f/s): %+v", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), want)
}
