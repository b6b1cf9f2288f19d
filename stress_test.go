package workpool_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/workpool-go/workpool"
)

var stressJobs = flag.Int("stress.jobs", 0,
	"jobs in TestStress and in TestStressRetryResize; 0 means 1e6 (2e4 with -short) "+
		"and 5e5 (5e4 under -race or with -short)")

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
	shutdownAt := n * 9 / 10
	if hard {
		shutdownAt = n / 2
	}
	shutErr := submitRacingShutdown(t, p, refused, submitters, shutdownAt,
		func(i int) bool { return hard && i == 1 }, // submitted above
		func() error {
			ctx := context.Background()
			if hard {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
			}
			return p.Shutdown(ctx)
		})
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

// TestStressRetryResize pushes jobs that fail and are retried through a pool
// that a storm of Resize calls keeps resizing between 1 and 16 workers and
// whose rate limit is switched on and off, from 8 submitters, while Shutdown
// races the last of them: gracefully, and with a deadline that passes while
// retries wait. It checks with a record per job that each accepted job ran
// its attempts 1, 2, 3... in order, as many as its plan and the policy say,
// and ended exactly once: by its last attempt or, only at the hard stop,
// dropped while it waited; and that Stats and the hooks agree.
func TestStressRetryResize(t *testing.T) {
	n := *stressJobs
	if n == 0 {
		n = 500_000 // about 1s on 2 cores
		if testing.Short() || raceEnabled {
			n = 50_000 // about 2s under -race
		}
	}
	t.Run("graceful", func(t *testing.T) { stressRetryResize(t, n*3/4, false) })
	t.Run("hard-stop", func(t *testing.T) { stressRetryResize(t, n/4, true) })
}

const stressMaxAttempts = 4

var errStressTransient = errors.New("stress: transient failure")

// stressAttemptKind says what attempt a of job i does: most jobs succeed at
// once; some fail once to three times and then succeed, some fail
// permanently (some after one transient failure), some fail on every
// attempt and run out of them, a few panic or call Goexit once, fewer panic
// on every attempt.
func stressAttemptKind(i int, a int32) jobKind {
	switch {
	case i%4099 == 0:
		return cmpKind(a == 1, jobGoexit, jobOK)
	case i%2042 == 0:
		return jobPanic
	case i%1021 == 0:
		return cmpKind(a == 1, jobPanic, jobOK)
	case i%13 == 0:
		return jobError
	case i%11 == 0:
		return cmpKind(a == 1 && i%2 == 0, jobError, jobPermanent)
	case i%5 == 1:
		return cmpKind(a <= int32(1+i%3), jobError, jobOK)
	}
	return jobOK
}

func cmpKind(cond bool, yes, no jobKind) jobKind {
	if cond {
		return yes
	}
	return no
}

// stressRetried reports whether the policy of stressRetryResize retries an
// attempt of kind k (RetryPanics is on).
func stressRetried(k jobKind) bool { return k == jobError || k == jobPanic || k == jobGoexit }

// stressPlannedAttempts returns how many attempts job i makes if nothing
// stops it, and what the last one does.
func stressPlannedAttempts(i int) (int32, jobKind) {
	for a := int32(1); ; a++ {
		if k := stressAttemptKind(i, a); !stressRetried(k) || a == stressMaxAttempts {
			return a, k
		}
	}
}

// stressRecord is the ledger of one job of stressRetryResize.
type stressRecord struct {
	attempts, dropped, onError atomic.Int32
	dropAt, errorAt            atomic.Int32 // attempts made when OnDrop, OnError were called
}

func stressRetryResize(t *testing.T, n int, hard bool) {
	const submitters, maxWorkers = 8, 16
	recs := make([]stressRecord, n)
	refused := make([]error, n) // each index written by one submitter
	var active, maxActive atomic.Int32
	var failures atomic.Int32
	bad := func(format string, args ...any) {
		if failures.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	policy := workpool.RetryPolicy{MaxAttempts: stressMaxAttempts, InitialBackoff: 20 * time.Microsecond,
		MaxBackoff: 500 * time.Microsecond, Jitter: 0.5, RetryPanics: true}
	if hard {
		// Waits long enough that many retries wait when the deadline passes.
		policy.InitialBackoff, policy.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	p, err := workpool.New(func(ctx context.Context, i int) error {
		rec := &recs[i]
		a := rec.attempts.Add(1)
		if got := workpool.Attempt(ctx); got != int(a) || a > stressMaxAttempts {
			bad("job %d: Attempt(ctx) = %d in its call number %d; MaxAttempts %d", i, got, a, stressMaxAttempts)
		}
		if d, e := rec.dropped.Load(), rec.onError.Load(); d != 0 || e != 0 {
			bad("job %d: attempt %d after OnDrop (%d) or OnError (%d)", i, a, d, e)
		}
		cur := active.Add(1)
		for m := maxActive.Load(); cur > m && !maxActive.CompareAndSwap(m, cur); m = maxActive.Load() {
		}
		defer active.Add(-1)
		switch stressAttemptKind(i, a) {
		case jobGoexit:
			runtime.Goexit()
		case jobPanic:
			panic(i)
		case jobError:
			return errStressTransient
		case jobPermanent:
			return workpool.Permanent(errFuzz)
		}
		return nil
	}, workpool.WithWorkers(4), workpool.WithQueueSize(256), workpool.WithRetry(policy),
		workpool.WithShutdownTimeout(time.Minute),
		workpool.OnDrop(func(i int, err error) {
			rec := &recs[i]
			rec.dropAt.Store(rec.attempts.Load())
			if rec.dropped.Add(1) > 1 {
				bad("job %d dropped twice", i)
			}
			if !hard || !isDrop(err, workpool.ReasonShutdown, context.DeadlineExceeded) {
				bad("job %d dropped with %v; want only the hard stop's drops", i, err)
			}
		}),
		workpool.OnError(func(i int, err error) {
			rec := &recs[i]
			a := rec.attempts.Load()
			rec.errorAt.Store(a)
			rec.onError.Add(1)
			var pe *workpool.PanicError
			ok := false
			switch k := stressAttemptKind(i, a); k {
			case jobError:
				ok = err == errStressTransient
			case jobPermanent:
				ok = workpool.IsPermanent(err) && errors.Is(err, errFuzz)
			case jobPanic:
				ok = errors.As(err, &pe) && pe.Value == i
			case jobGoexit:
				ok = err == workpool.ErrGoexit
			}
			if !ok {
				bad("job %d: OnError(%v) after attempt %d of kind %d", i, err, a, stressAttemptKind(i, a))
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()

	// The storm: two goroutines resize at random, one switches the rate
	// limit on and off, until Shutdown has returned.
	var closing atomic.Bool // set before Shutdown is called
	stop := make(chan struct{})
	var resizes atomic.Int64
	var storm sync.WaitGroup
	for range 2 {
		storm.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				size := 1 + rand.IntN(maxWorkers)
				switch err := p.Resize(size); {
				case err == nil:
					resizes.Add(1)
				case err == workpool.ErrClosed && closing.Load():
				default:
					bad("Resize(%d) = %v (Shutdown called: %v)", size, err, closing.Load())
				}
				time.Sleep(20 * time.Microsecond)
			}
		})
	}
	storm.Go(func() {
		for on := true; ; on = !on {
			limit, burst := rate.Limit(100_000), 32
			if !on {
				limit, burst = rate.Inf, 0
			}
			if err := p.SetRateLimit(limit, burst); err != nil {
				bad("SetRateLimit(%v, %d) = %v", limit, burst, err)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})

	begin := time.Now()
	shutdownAt := n * 9 / 10
	if hard {
		shutdownAt = n / 2
	}
	shutErr := submitRacingShutdown(t, p, refused, submitters, shutdownAt, nil, func() error {
		timeout := waitFor
		if hard {
			timeout = 2 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		closing.Store(true)
		return p.Shutdown(ctx)
	})
	if !hard {
		// Every retry before the deadline ran; the handlers' returns happen
		// before Shutdown returns nil.
		if s := p.Stats(); shutErr != nil || s.Active != 0 || s.Retrying != 0 || s.Completed+s.Dropped != s.Submitted {
			t.Fatalf("Shutdown = %v, then Stats = %+v; want nil, at rest", shutErr, s)
		}
	} else if shutErr != context.DeadlineExceeded {
		t.Fatalf("Shutdown with a 2ms deadline = %v; want DeadlineExceeded", shutErr)
	} else if err := p.Shutdown(context.Background()); err != context.DeadlineExceeded {
		// It waits for the handlers still running.
		t.Errorf("Shutdown after a hard stop = %v; want that stop's DeadlineExceeded", err)
	}
	close(stop)
	storm.Wait()
	elapsed := time.Since(begin)

	got := p.Stats()
	want := workpool.Stats{Workers: got.Workers, QueueCapacity: 256}
	if got.Workers < 1 || got.Workers > maxWorkers {
		t.Errorf("Stats().Workers = %d; want 1..%d", got.Workers, maxWorkers)
	}
	var attempts, droppedWaiting uint64
	for i := range n {
		rec := &recs[i]
		a, d, e := rec.attempts.Load(), rec.dropped.Load(), rec.onError.Load()
		if err := refused[i]; err != nil {
			want.Rejected++
			if full := err == workpool.ErrQueueFull && i%3 != 0; (!full && err != workpool.ErrClosed) || a+d != 0 {
				bad("job %d refused with %v; ran %d times, dropped %d times", i, err, a, d)
			}
			continue
		}
		want.Submitted++
		attempts += uint64(a)
		planned, plannedLast := stressPlannedAttempts(i)
		last := stressAttemptKind(i, a)
		for k := int32(1); k < a; k++ {
			if !stressRetried(stressAttemptKind(i, k)) {
				bad("job %d: attempt %d of kind %d ends it, but it ran %d attempts", i, k, stressAttemptKind(i, k), a)
			}
		}
		switch {
		case d == 1:
			// Only the hard stop drops, and only a job not yet run or one
			// waiting for a retry.
			want.Dropped++
			if a > 0 {
				droppedWaiting++
			}
			if e != 0 || rec.dropAt.Load() != a || a >= planned || a > 0 && !stressRetried(last) {
				bad("job %d: dropped after %d of its %d attempts (kind %d), OnError %d", i, a, planned, last, e)
			}
			continue
		case a == planned:
			// Ran to the end of its plan.
		case !hard || a == 0 || a > planned || !stressRetried(last):
			bad("job %d: ran %d attempts, planned %d, dropped %d", i, a, planned, d)
		}
		// Ended by attempt a: as planned, or a failure the hard stop kept
		// from being retried.
		want.Completed++
		failed := a < planned || plannedLast != jobOK
		if failed {
			want.Failed++
		}
		if failed && last == jobPanic {
			want.Panicked++
		}
		if e != int32(cmpInt(failed)) || e == 1 && rec.errorAt.Load() != a {
			bad("job %d: OnError called %d times, after attempt %d; it ended by attempt %d, failed: %v", i, e, rec.errorAt.Load(), a, failed)
		}
	}
	want.Retries = attempts - want.Completed
	checkStats(t, got, want)
	if m := maxActive.Load(); m > maxWorkers {
		t.Errorf("%d handlers ran at once; want at most %d", m, maxWorkers)
	}
	if f := failures.Load(); f > 10 {
		t.Errorf("... %d failures in all", f)
	}
	if hard && droppedWaiting == 0 {
		t.Errorf("the hard stop dropped no job waiting for its retry; the variant is there to exercise those drops")
	}
	t.Logf("%d jobs, %d attempts in %v, %d resizes, Shutdown = %v, %d dropped waiting for a retry: %+v",
		n, attempts, elapsed.Round(time.Millisecond), resizes.Load(), shutErr, droppedWaiting, want)
}

func cmpInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// submitRacingShutdown submits jobs 0 to len(refused)-1, but those skip
// says (skip may be nil), from submitters goroutines, every third with
// SubmitWait and the others with Submit, recording each result in refused.
// Once shutdownAt jobs were tried it calls shutdown on a goroutine of its
// own, so that Shutdown races the submitters; it returns shutdown's result
// once every submitter is done.
func submitRacingShutdown(t *testing.T, p *workpool.Pool[int], refused []error, submitters, shutdownAt int,
	skip func(int) bool, shutdown func() error) error {
	t.Helper()
	n := len(refused)
	var tried atomic.Int64
	shut := make(chan error, 1)
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := g; i < n; i += submitters {
				if skip != nil && skip(i) {
					continue
				}
				if tried.Add(1) == int64(shutdownAt) {
					go func() { shut <- shutdown() }()
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
	return recv(t, shut, "Shutdown")
}
