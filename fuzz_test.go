package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/workpool-go/workpool"
)

// FuzzPool is a model-checking fuzz test. Its input decodes into a pool
// configuration and a script of operations for up to four goroutines that
// run at once: Submit and SubmitWait of jobs that succeed, fail, panic,
// block until their context ends, ignore it for a while or call
// runtime.Goexit; Start, Shutdown with various deadlines, cancelling the
// base context. Afterwards it checks, job by job, that nothing accepted was
// lost or handled twice, and that Stats, the hooks, the errors returned and
// the time Shutdown took agree with what happened. See fuzzRun.check.
//
// With the contexts flag, every handler also derives children of its
// context (WithCancel, WithTimeout, AfterFunc), never cancels them, and
// leaks its context to a goroutine that reads it across later jobs; the
// handlers of later jobs check earlier jobs' contexts too. The run checks
// the context contract throughout: a job's context is its own, Err is
// sticky and consistent with Done, Done and Deadline are stable, Cause
// agrees with Err, and every child ends with its parent. See fuzzCtx.
//
// With the retry flag (byte 3 bit 7), the input also sets a retry policy and
// a rate limit, adds jobs that fail permanently, lets each job behave
// differently from one attempt to the next, and adds Resize and
// SetRateLimit to the operations. The record of each job then counts its
// attempts, and the check proves that each accepted job ran its attempts
// 1, 2, 3... in order, no more than MaxAttempts, and ended exactly once:
// handled by its last attempt, or dropped. See fuzzRun.checkJob.
//
// Most inputs run in a synctest bubble: time is virtual, so deadlines are
// exact and cost nothing, and a hang becomes a deadlock panic. One in four
// runs on the real clock, where timers race the workers. With the coarse
// flag (byte 3 bit 6, with the job timeout, in the bubble) every duration
// of the run is 4000 times longer, so that the job timeout (12s) is timed
// on the pool's coarse clock rather than by a clock read per job.
func FuzzPool(f *testing.F) {
	// The seed corpus is in testdata/fuzz/FuzzPool: one file per operation
	// and job behaviour, plus every crasher found.
	f.Add([]byte{1, 3, 0x44, 0, 0x00, 0, 0x00, 1, 0x00, 2, 0x13, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, script := decodeFuzz(data)
		if cfg.realTime {
			newFuzzRun(cfg, script).run(t)
			return
		}
		synctest.Test(t, func(t *testing.T) { newFuzzRun(cfg, script).run(t) })
	})
}

// Durations used by a run, on the virtual or the real clock.
type fuzzTimes struct {
	tiny, short, generous time.Duration // Shutdown deadlines
	jobTimeout            time.Duration
	ignore                time.Duration // how long jobIgnore ignores its context
	waitShort, waitLong   time.Duration // SubmitWait deadlines
	pause                 time.Duration // unit of opPause
	slack                 time.Duration // how late Shutdown may return
}

var (
	virtualTimes = fuzzTimes{tiny: time.Microsecond, short: 5 * time.Millisecond, generous: time.Minute,
		jobTimeout: 3 * time.Millisecond, ignore: time.Millisecond,
		waitShort: time.Millisecond, waitLong: time.Second, pause: 100 * time.Microsecond}
	realTimes = fuzzTimes{tiny: 20 * time.Microsecond, short: 2 * time.Millisecond, generous: 30 * time.Millisecond,
		jobTimeout: 2 * time.Millisecond, ignore: 300 * time.Microsecond,
		waitShort: 200 * time.Microsecond, waitLong: 5 * time.Millisecond, pause: 50 * time.Microsecond,
		slack: 2 * time.Second}
	// coarseTimes are virtualTimes 4000 times longer: the job timeout, 12s,
	// is long enough for the pool's coarse clock (see coarseClock).
	coarseTimes = virtualTimes.scaled(4000)
)

// scaled returns t with every duration k times longer.
func (t fuzzTimes) scaled(k time.Duration) fuzzTimes {
	return fuzzTimes{tiny: k * t.tiny, short: k * t.short, generous: k * t.generous,
		jobTimeout: k * t.jobTimeout, ignore: k * t.ignore,
		waitShort: k * t.waitShort, waitLong: k * t.waitLong, pause: k * t.pause, slack: k * t.slack}
}

type fuzzConfig struct {
	workers, queue int
	policy         workpool.DropPolicy
	jobTimeout     bool
	startEarly     bool
	metrics        bool // a counting Metrics, which also makes the pool read the clock
	hookPanics     bool // OnDrop and OnError panic after recording
	hookGoexit     bool // OnDrop and OnError call runtime.Goexit after recording, as t.FailNow would
	logger         bool // a logger that discards, to run the logging paths
	children       bool // jobOK handlers Submit a child job (jobError) from inside the pool
	contexts       bool // handlers derive children and leak their context (see fuzzCtx)
	coarse         bool // coarseTimes: the job timeout runs on the coarse clock
	shortShutdown  bool // WithShutdownTimeout(times.short) instead of an hour
	realTime       bool
	actors         int

	// With the retry flag (see decodeRetry):
	retrying  bool
	retry     workpool.RetryPolicy
	rateSet   bool // WithRateLimit(rateLimit, rateBurst)
	rateLimit rate.Limit
	rateBurst int
	planSeed  byte // the attempt plan of jobs not submitted by opSubmit
}

// maxAttempts is how many times a job may run.
func (c fuzzConfig) maxAttempts() int32 { return int32(max(c.retry.MaxAttempts, 1)) }

type jobKind uint8

const (
	jobOK        jobKind = iota
	jobError             // returns errFuzz
	jobPanic             // panics
	jobBlock             // returns ctx.Err() once its context ends
	jobIgnore            // ignores its context for times.ignore, returns nil
	jobHold              // ignores its context until the run releases it
	jobGoexit            // calls runtime.Goexit
	jobPermanent         // returns workpool.Permanent(errFuzz); only with the retry flag
	numJobKinds

	numBaseJobKinds = jobPermanent // the kinds without the retry flag
)

type opKind uint8

const (
	opSubmit     opKind = iota // arg: job kind
	opSubmitWait               // arg: job kind | ctx<<4 (0 cancelled, 1 short, 2 long, 3 background if never blocking)
	opStart
	opShutdown   // arg%4: expired, tiny, short, generous
	opCancelBase //
	opPause      // arg%4 pauses, 0 is a Gosched
	opStats      // checks the running invariants
	opBurst      // Submit arg%16+1 jobs of mixed kinds
	// Only with the retry flag:
	opResize       // arg: 1+arg%8 workers; with bit 7, an invalid size
	opSetRateLimit // arg: see setRateLimit
	numOps

	numBaseOps = opResize // the operations without the retry flag
)

type fuzzOp struct {
	kind opKind
	arg  byte
}

const maxFuzzOps = 48

// decodeFuzz reads: byte 0 workers-1 (mod 8), byte 1 queue size-1 (mod 64),
// byte 2 flags (bit 0 DropOldest, 1 job timeout, 2 start early, 3 metrics,
// 4 and 5 both set: real time, 5 alone: hooks panic, 6-7 actors-1), byte 3
// more flags (bit 0 short shutdown timeout, 1 hooks call Goexit, 2 logger,
// 3 handlers submit child jobs, 4 contexts, 6 with the job timeout and
// virtual time: coarseTimes, 7 retry: bytes 4-7 then say how, see
// decodeRetry), then pairs: (actor<<4 | op, arg). Without the retry flag
// an input means what it meant before retries existed: the seed corpus keeps
// testing what it was written for.
func decodeFuzz(data []byte) (fuzzConfig, [][]fuzzOp) {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	flags, more := at(2), at(3)
	cfg := fuzzConfig{
		workers:       1 + int(at(0)%8),
		queue:         1 + int(at(1)%64),
		policy:        workpool.DropPolicy(flags & 1),
		jobTimeout:    flags&2 != 0,
		startEarly:    flags&4 != 0,
		metrics:       flags&8 != 0,
		realTime:      flags&0x30 == 0x30,
		hookPanics:    flags&0x30 == 0x20,
		shortShutdown: more&1 != 0,
		hookGoexit:    more&2 != 0,
		logger:        more&4 != 0,
		children:      more&8 != 0,
		contexts:      more&16 != 0,
		coarse:        more&0x40 != 0 && flags&2 != 0 && flags&0x30 != 0x30,
		actors:        1 + int(flags>>6),
	}
	ops, first := numBaseOps, 4
	if more&0x80 != 0 {
		decodeRetry(&cfg, at(4), at(5), at(6), at(7))
		ops, first = numOps, 8
	}
	script := make([][]fuzzOp, cfg.actors)
	for i, n := first, 0; i+1 < len(data) && n < maxFuzzOps; i, n = i+2, n+1 {
		a := int(data[i]>>4) % cfg.actors
		script[a] = append(script[a], fuzzOp{kind: opKind(data[i]&0x0f) % ops, arg: data[i+1]})
	}
	return cfg, script
}

// decodeRetry reads the retry flag's four bytes. b0: bits 0-2 MaxAttempts
// (mod 5: 0 to 4), 3 RetryPanics, 4-5 Jitter (0, 0.5, 1, 0.1), 6-7
// InitialBackoff (1ns, 100µs, 1ms, 2ms). b1: bits 0-1 Multiplier (default,
// 1, 1.5, 4), 2 MaxBackoff equal to InitialBackoff (else 2ms), 3-5 the rate
// limit (0-3 none, then 1000/s, 10000/s, 100000/s, rate.Inf). b2: bits 0-2
// the rate limit's burst-1. b3: the seed of attempt plans (see fuzzJob).
// The waits stay short so that graceful shutdowns see retries through.
func decodeRetry(cfg *fuzzConfig, b0, b1, b2, b3 byte) {
	initial := [...]time.Duration{time.Nanosecond, 100 * time.Microsecond, time.Millisecond, 2 * time.Millisecond}[b0>>6]
	maxWait := 2 * time.Millisecond
	if b1&4 != 0 {
		maxWait = initial
	}
	cfg.retrying = true
	cfg.retry = workpool.RetryPolicy{
		MaxAttempts:    int(b0&7) % 5,
		RetryPanics:    b0&8 != 0,
		Jitter:         [...]float64{0, 0.5, 1, 0.1}[b0>>4&3],
		InitialBackoff: initial,
		MaxBackoff:     maxWait,
		Multiplier:     [...]float64{0, 1, 1.5, 4}[b1&3],
	}
	if l := b1 >> 3 & 7; l >= 4 {
		cfg.rateSet = true
		cfg.rateLimit = [...]rate.Limit{1000, 10_000, 100_000, rate.Inf}[l-4]
		cfg.rateBurst = 1 + int(b2&7)
	}
	cfg.planSeed = b3
}

// fuzzJob is a job of the run. With the retry flag, its plan says how its
// behaviour changes from one attempt to the next (see kindAt).
type fuzzJob struct {
	id   int32
	kind jobKind
	plan byte // bits 0-1: extra attempts of kind; 2-4: the kind after them
}

// kindAt returns what attempt a (1 for the first) of job j does: j.kind for
// the first 1+plan&3 attempts, then the kind in the plan's upper bits. So a
// job may fail twice and then succeed, or fail and then fail permanently.
func (j fuzzJob) kindAt(a int32) jobKind {
	if a <= 1+int32(j.plan&3) {
		return j.kind
	}
	return jobKind(j.plan>>2&7) % numJobKinds
}

var (
	errFuzz    = errors.New("fuzz: job failed")
	errPending = errors.New("fuzz: Submit did not return")
)

// jobRecord is what happened to one job. Written by the pool's goroutines
// (the atomics) and by the submitting actor (the rest).
type jobRecord struct {
	attempts, dropped, onError atomic.Int32 // handler calls, OnDrop calls, OnError calls
	panics                     atomic.Int32 // attempts that panicked
	// The attempts made when OnDrop and OnError were (last) called: a job
	// must not run again after either.
	dropAt, errorAt   atomic.Int32
	dropErr, errorErr atomic.Pointer[error]

	// Written by the actor that submitted the job, read after the actors
	// finished.
	job       fuzzJob
	wait      bool  // SubmitWait
	submitErr error // what Submit or SubmitWait returned
	// afterCancel says the submitting actor had cancelled the base context
	// (and its cancel had returned) before submitting: it must be refused.
	afterCancel bool
	ctxErr      error // SubmitWait's ctx.Err() after it returned
}

type shutdownCall struct {
	err       error
	took      time.Duration
	limit     time.Duration // the deadline the call was under, from its start
	statsOK   string        // a failed check made right after it returned nil
	whichCall string
}

type fuzzRun struct {
	cfg    fuzzConfig
	script [][]fuzzOp
	times  fuzzTimes

	pool       *workpool.Pool[fuzzJob]
	cancelBase context.CancelCauseFunc
	ctxs       fuzzCtxs
	release    chan struct{} // closed at the end: jobHold returns
	metrics    *countingMetrics

	nextID    atomic.Int32
	jobs      []jobRecord
	active    atomic.Int32
	maxActive atomic.Int32
	returned  atomic.Int64 // handler calls that ended, by return, panic or Goexit
	closing   atomic.Bool  // a Shutdown or base cancel was called
	cancelled atomic.Bool  // the base context was cancelled: the pool stops hard
	// stopErr is what the last Shutdown, which waits for the workers to exit,
	// returned: nil unless the pool stopped hard. Set before check.
	stopErr error

	// Resize and SetRateLimit calls: each valid call raises its counters'
	// gen as it begins and holds busy up while it runs, so that a call can
	// tell whether another one ran at the same time.
	resizeGen, resizeBusy atomic.Int32
	limitGen, limitBusy   atomic.Int32
	maxWorkers            atomic.Int32  // the most workers the pool was ever given
	sizes                 atomic.Uint32 // bit n: Resize(n) returned nil

	mu        sync.Mutex
	shutdowns []shutdownCall // guarded by mu
	failures  []string       // guarded by mu
}

func newFuzzRun(cfg fuzzConfig, script [][]fuzzOp) *fuzzRun {
	r := &fuzzRun{cfg: cfg, script: script, times: virtualTimes, release: make(chan struct{})}
	switch {
	case cfg.realTime:
		r.times = realTimes
	case cfg.coarse:
		r.times = coarseTimes
	}
	// Scripts submit at most maxFuzzOps*16 jobs; children stop at that id,
	// plus one per running handler.
	r.jobs = make([]jobRecord, 2*maxFuzzOps*16+16)
	return r
}

func (r *fuzzRun) failf(format string, args ...any) {
	r.mu.Lock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *fuzzRun) run(t *testing.T) {
	var before goleak.Option // the goroutines that are not the run's
	if r.cfg.realTime {
		before = goleak.IgnoreCurrent()
	}
	base, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r.cancelBase = cancel
	shutdownTimeout := time.Hour
	if r.cfg.shortShutdown {
		shutdownTimeout = r.times.short
	}
	opts := []workpool.Option{
		workpool.WithWorkers(r.cfg.workers), workpool.WithQueueSize(r.cfg.queue),
		workpool.WithDropPolicy(r.cfg.policy), workpool.WithContext(base),
		workpool.WithShutdownTimeout(shutdownTimeout), workpool.WithJobTimeout(0),
		workpool.OnDrop(r.onDrop), workpool.OnError(r.onError),
	}
	if r.cfg.jobTimeout {
		opts = append(opts, workpool.WithJobTimeout(r.times.jobTimeout))
	}
	if r.cfg.logger {
		opts = append(opts, workpool.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}
	if r.cfg.metrics {
		r.metrics = &countingMetrics{}
		opts = append(opts, workpool.WithMetrics(r.metrics))
	}
	if r.cfg.retrying {
		opts = append(opts, workpool.WithRetry(r.cfg.retry))
	}
	if r.cfg.rateSet {
		opts = append(opts, workpool.WithRateLimit(r.cfg.rateLimit, r.cfg.rateBurst))
	}
	r.maxWorkers.Store(int32(r.cfg.workers))
	p, err := workpool.New(r.handle, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.pool = p
	if r.cfg.startEarly {
		p.Start()
	}

	var wg sync.WaitGroup
	for a := range r.script {
		wg.Go(func() { r.act(r.script[a]) })
	}
	wg.Wait()

	// Stop for good: a short deadline, then release the holders and wait
	// for the workers to exit. Each on its own goroutine, as hooks may end
	// the goroutine that calls Shutdown.
	onOwn := func(f func()) {
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		<-done
	}
	onOwn(func() { r.shutdown(r.times.short, "final") })
	close(r.release)
	var stopErr string
	onOwn(func() { stopErr = r.waitStopped() })
	if stopErr != "" {
		t.Fatal(stopErr)
	}
	r.ctxs.finish(r)

	if r.cfg.realTime {
		// Only once the workers have exited are their counts final: Stats
		// may show a job completed but not yet failed (in the bubble,
		// synctest.Wait in waitStopped does this).
		// runtime.NumGoroutine may be off while goroutines start and exit
		// on another P; goleak compares goroutines by ID, and retries.
		if err := goleak.Find(before); err != nil {
			t.Fatal(err)
		}
	}
	r.check(t)
}

// waitStopped calls Shutdown without a deadline; on a stopped pool it
// returns once the workers have exited, unless the shutdown timeout (counted
// from the first call) has passed: then it returns at once, and the last
// handlers are waited for here.
func (r *fuzzRun) waitStopped() string {
	done := make(chan error, 1)
	go func() {
		err := errPending // stays if an OnDrop hook ends this goroutine
		defer func() { done <- err }()
		err = r.pool.Shutdown(context.Background())
	}()
	if !r.cfg.realTime {
		// In the bubble a hang is a deadlock panic with every stack.
		r.stopErr = <-done
		if err := r.stopErr; err != nil && err != context.DeadlineExceeded && err != context.Canceled && err != errPending {
			r.failf("last Shutdown = %v", err)
		}
		deadline := time.Now().Add(time.Hour)
		pause := r.times.pause // grows: polling an hour at the first pause would take real minutes
		for s := r.pool.Stats(); s.Active != 0 || s.Completed+s.Dropped != s.Submitted; s = r.pool.Stats() {
			if time.Now().After(deadline) {
				return fmt.Sprintf("pool not at rest an hour (virtual) after release: %+v", s)
			}
			time.Sleep(pause) // virtual: lets sleeping handlers finish
			pause = min(2*pause, 10*time.Millisecond)
		}
		synctest.Wait()
		return ""
	}
	select {
	case err := <-done:
		r.stopErr = err
		if err != nil && err != context.DeadlineExceeded && err != context.Canceled && err != errPending {
			r.failf("last Shutdown = %v", err)
		}
	case <-time.After(3 * time.Second): // under the fuzzer's 10s limit for one input
		buf := make([]byte, 1<<20)
		return fmt.Sprintf("Shutdown(Background) after release hangs; stacks:\n%s", buf[:runtime.Stack(buf, true)])
	}
	deadline := time.Now().Add(3 * time.Second)
	for s := r.pool.Stats(); s.Active != 0 || s.Completed+s.Dropped != s.Submitted; s = r.pool.Stats() {
		if time.Now().After(deadline) {
			return fmt.Sprintf("pool not at rest 3s after release: %+v", s)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return ""
}

// act runs one goroutine's part of the script.
func (r *fuzzRun) act(ops []fuzzOp) {
	cancelled := false // this actor's cancel of the base context returned
	kinds := uint8(numBaseJobKinds)
	if r.cfg.retrying {
		kinds = uint8(numJobKinds)
	}
	for _, op := range ops {
		switch op.kind {
		case opSubmit:
			if r.cfg.retrying {
				r.submitAs(jobKind(op.arg&7), int(op.arg>>3), false, 0, cancelled)
			} else {
				r.submitAs(jobKind(op.arg%kinds), -1, false, 0, cancelled)
			}
		case opSubmitWait:
			r.submitAs(jobKind(op.arg&0x0f%kinds), -1, true, op.arg>>4%4, cancelled)
		case opStart:
			r.pool.Start()
		case opShutdown:
			limits := []time.Duration{0, r.times.tiny, r.times.short, r.times.generous}
			r.shutdown(limits[op.arg%4], fmt.Sprintf("op %d", op.arg%4))
		case opCancelBase:
			r.closing.Store(true)
			r.cancelled.Store(true)
			r.cancelBase(errBaseCause)
			cancelled = true
		case opPause:
			if n := op.arg % 4; n > 0 {
				time.Sleep(time.Duration(n) * r.times.pause)
			} else {
				runtime.Gosched()
			}
		case opStats:
			r.checkRunning()
		case opBurst:
			for i := range int(op.arg%16) + 1 {
				r.submitAs(jobKind((int(op.arg)+i*5)%int(kinds)), -1, false, 0, cancelled)
			}
		case opResize:
			r.resize(op.arg)
		case opSetRateLimit:
			r.setRateLimit(op.arg)
		}
	}
}

// submit submits one new job and records the result.
func (r *fuzzRun) submit(kind jobKind, wait bool, ctxKind byte) {
	r.submitAs(kind, -1, wait, ctxKind, false)
}

// submitAs submits a job of the given kind and attempt plan (see fuzzJob);
// plan -1 takes one from the run's plan seed and the job's id.
func (r *fuzzRun) submitAs(kind jobKind, plan int, wait bool, ctxKind byte, afterCancel bool) {
	id := r.nextID.Add(1)
	rec := &r.jobs[id]
	if plan < 0 {
		plan = int(r.cfg.planSeed+byte(id)*0x25) >> 3
	}
	job := fuzzJob{id: id, kind: kind, plan: byte(plan)}
	rec.job, rec.wait, rec.afterCancel = job, wait, afterCancel
	rec.submitErr = errPending // stays if an OnDrop hook ends this goroutine
	if !wait {
		rec.submitErr = r.pool.Submit(job)
		return
	}
	var ctx context.Context
	var cancel context.CancelFunc
	switch ctxKind {
	case 0:
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
	case 1:
		ctx, cancel = context.WithTimeout(context.Background(), r.times.waitShort)
	default:
		ctx, cancel = context.WithTimeout(context.Background(), r.times.waitLong)
	}
	defer cancel()
	rec.submitErr = r.pool.SubmitWait(ctx, job)
	rec.ctxErr = ctx.Err()
}

// shutdown calls Shutdown under a deadline limit from now (0: already
// expired) and records what it returned and how long it took.
func (r *fuzzRun) shutdown(limit time.Duration, which string) {
	r.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if limit == 0 {
		<-ctx.Done()
	}
	start := time.Now()
	err := r.pool.Shutdown(ctx)
	took := time.Since(start)
	call := shutdownCall{err: err, took: took, limit: limit, whichCall: which}
	if err == nil {
		// Every handler's return happens before Shutdown returns nil.
		// Every attempt either ended its job (Completed) or scheduled a
		// retry (Retries), and no retry was dropped, as the pool did not
		// stop hard.
		s := r.pool.Stats()
		if s.Completed+s.Dropped != s.Submitted || s.Queued != 0 || s.Active != 0 || s.Retrying != 0 {
			call.statsOK = fmt.Sprintf("Stats right after Shutdown = nil: %+v", s)
		} else if got := uint64(r.returned.Load()); got != s.Completed+s.Retries {
			call.statsOK = fmt.Sprintf("handlers returned %d at Shutdown = nil; Completed %d + Retries %d", got, s.Completed, s.Retries)
		}
	}
	r.mu.Lock()
	r.shutdowns = append(r.shutdowns, call)
	r.mu.Unlock()
}

// resize calls Resize with 1+arg%8 workers, or, with arg's bit 7, with an
// invalid size, and checks the error and, when no other Resize ran at the
// same time, the size Stats reports after it.
func (r *fuzzRun) resize(arg byte) {
	if arg&0x80 != 0 {
		n := [...]int{0, -1, workpool.MaxWorkers + 1, math.MinInt}[arg%4]
		gen := r.resizeGen.Load()
		alone := r.resizeBusy.Load() == 0
		before := r.pool.Stats().Workers
		err := r.pool.Resize(n)
		if err == nil || errors.Is(err, workpool.ErrClosed) {
			r.failf("Resize(%d) = %v; want an error for the size", n, err)
		}
		if after := r.pool.Stats().Workers; alone && gen == r.resizeGen.Load() && after != before {
			r.failf("Resize(%d) = %v changed Workers from %d to %d", n, err, before, after)
		}
		return
	}
	n := 1 + int(arg%8)
	for m := r.maxWorkers.Load(); int32(n) > m && !r.maxWorkers.CompareAndSwap(m, int32(n)); m = r.maxWorkers.Load() {
	}
	r.resizeBusy.Add(1)
	gen := r.resizeGen.Add(1)
	alone := r.resizeBusy.Load() == 1
	err := r.pool.Resize(n)
	got := r.pool.Stats().Workers
	alone = alone && gen == r.resizeGen.Load()
	r.resizeBusy.Add(-1)
	switch {
	case err == nil:
		for s := r.sizes.Load(); !r.sizes.CompareAndSwap(s, s|1<<n); s = r.sizes.Load() {
		}
		if alone && got != n {
			r.failf("Resize(%d) = nil; then Stats().Workers = %d", n, got)
		}
	case err == workpool.ErrClosed && r.closing.Load():
	default:
		r.failf("Resize(%d) = %v; want nil, or ErrClosed after Shutdown or a cancel", n, err)
	}
}

// setRateLimit calls SetRateLimit. arg bits 0-2: the limit (rate.Inf,
// 1000/s, 5000/s, 20000/s, 100000/s, then invalid: 0, -5/s, NaN); bits 3-5:
// the burst-1; bit 6: burst 0, invalid unless the limit is rate.Inf. It
// checks the error and, when no other call ran at the same time, what
// RateLimit reports after it.
func (r *fuzzRun) setRateLimit(arg byte) {
	limit := [...]rate.Limit{rate.Inf, 1000, 5000, 20_000, 100_000, 0, -5, rate.Limit(math.NaN())}[arg&7]
	burst := 1 + int(arg>>3&7)
	if arg&0x40 != 0 {
		burst = 0
	}
	valid := limit == rate.Inf || limit > 0 && burst >= 1
	r.limitBusy.Add(1)
	gen := r.limitGen.Add(1)
	alone := r.limitBusy.Load() == 1
	beforeL, beforeB := r.pool.RateLimit()
	err := r.pool.SetRateLimit(limit, burst)
	gotL, gotB := r.pool.RateLimit()
	alone = alone && gen == r.limitGen.Load()
	r.limitBusy.Add(-1)
	if valid != (err == nil) {
		r.failf("SetRateLimit(%v, %d) = %v; want an error: %v", limit, burst, err, !valid)
	}
	wantL, wantB := limit, burst
	switch {
	case !valid:
		wantL, wantB = beforeL, beforeB
	case limit == rate.Inf:
		wantB = 0
	}
	if alone && (gotL != wantL || gotB != wantB) {
		r.failf("SetRateLimit(%v, %d) = %v; then RateLimit() = %v, %d; want %v, %d", limit, burst, err, gotL, gotB, wantL, wantB)
	}
}

// handle runs attempt Attempt(ctx) of job j, as j.kindAt says.
func (r *fuzzRun) handle(ctx context.Context, j fuzzJob) error {
	rec := &r.jobs[j.id]
	attempt := rec.attempts.Add(1)
	if got := workpool.Attempt(ctx); got != int(attempt) {
		r.failf("job %d: Attempt(ctx) = %d in its call number %d", j.id, got, attempt)
	}
	if attempt > r.cfg.maxAttempts() {
		r.failf("job %d: attempt %d; MaxAttempts %d", j.id, attempt, r.cfg.retry.MaxAttempts)
	}
	if rec.dropped.Load() != 0 || rec.onError.Load() != 0 {
		r.failf("job %d: attempt %d after OnDrop (%d) or OnError (%d)", j.id, attempt, rec.dropped.Load(), rec.onError.Load())
	}
	cur := r.active.Add(1)
	for m := r.maxActive.Load(); cur > m && !r.maxActive.CompareAndSwap(m, cur); m = r.maxActive.Load() {
	}
	defer func() {
		r.active.Add(-1)
		r.returned.Add(1)
	}()
	if r.cfg.contexts {
		defer r.ctxs.enter(r, ctx, j).leave()
	}
	switch kind := j.kindAt(attempt); kind {
	case jobOK:
		if r.cfg.children && r.nextID.Load() < maxFuzzOps*16 {
			r.submit(jobError, false, 0) // from inside the pool, maybe during shutdown
		}
	case jobError:
		return errFuzz
	case jobPanic:
		rec.panics.Add(1)
		panic(fmt.Sprintf("fuzz job %d", j.id))
	case jobBlock:
		<-ctx.Done()
		return ctx.Err()
	case jobIgnore:
		time.Sleep(r.times.ignore)
	case jobHold:
		<-r.release
	case jobGoexit:
		runtime.Goexit()
	case jobPermanent:
		return workpool.Permanent(errFuzz)
	}
	return nil
}

func (r *fuzzRun) onDrop(j fuzzJob, err error) {
	rec := &r.jobs[j.id]
	rec.dropAt.Store(rec.attempts.Load())
	rec.dropped.Add(1)
	rec.dropErr.Store(&err)
	r.hookFault("OnDrop")
}

func (r *fuzzRun) onError(j fuzzJob, err error) {
	rec := &r.jobs[j.id]
	rec.errorAt.Store(rec.attempts.Load())
	rec.onError.Add(1)
	rec.errorErr.Store(&err)
	r.hookFault("OnError")
}

// hookFault makes a hook misbehave as the run's configuration says.
func (r *fuzzRun) hookFault(hook string) {
	if r.cfg.hookPanics {
		panic("fuzz: " + hook + " panics")
	}
	if r.cfg.hookGoexit {
		runtime.Goexit()
	}
}

// checkRunning checks what holds for any snapshot, however busy the pool.
func (r *fuzzRun) checkRunning() {
	s := r.pool.Stats()
	if s.Panicked > s.Failed || s.Failed > s.Completed || s.Completed+s.Dropped > s.Submitted {
		r.failf("running Stats = %+v; want Panicked <= Failed <= Completed, Completed+Dropped <= Submitted", s)
	}
	// Workers past a shrinking Resize finish their job: Active may exceed
	// Workers, but not the most workers the pool ever had.
	if s.Active < 0 || s.Active > int(r.maxWorkers.Load()) || s.Queued < 0 || s.Queued > s.QueueCapacity {
		r.failf("running Stats = %+v; want 0 <= Active <= %d, 0 <= Queued <= QueueCapacity", s, r.maxWorkers.Load())
	}
	if s.Retrying < 0 || uint64(s.Retrying) > s.Submitted || !r.cfg.retrying && (s.Retrying != 0 || s.Retries != 0) {
		r.failf("running Stats = %+v; want 0 <= Retrying <= Submitted, and no retry without a policy", s)
	}
	if d := r.pool.QueueDepth(); d < 0 || d > s.QueueCapacity {
		r.failf("running QueueDepth() = %d; want 0..%d", d, s.QueueCapacity)
	}
}

// check compares the pool's account of the run with the jobs' records.
func (r *fuzzRun) check(t *testing.T) {
	t.Helper()
	var want workpool.Stats
	want.Workers, want.QueueCapacity = r.cfg.workers, r.cfg.queue
	var onErrors, deadlineDrops, attempts, panics uint64
	var rejected [3]uint64 // queue full, closed, ctx
	n := int(r.nextID.Load())
	for id := 1; id <= n; id++ {
		j := &r.jobs[id]
		ran, dropped, onError := j.attempts.Load(), j.dropped.Load(), j.onError.Load()
		if j.afterCancel && j.submitErr != workpool.ErrClosed && j.submitErr != errPending {
			r.failf("job %d submitted after the base context's cancel returned: %v; want ErrClosed", id, j.submitErr)
		}
		if j.submitErr == errPending {
			// An evicted job's OnDrop ended the submitter. The eviction
			// pushes the new job before it drops the old one, so the new
			// job may have been accepted (and then ended once, checked
			// below) or not (if OnDrop ended an earlier round of the
			// eviction).
			if !r.cfg.hookGoexit {
				r.failf("job %d: Submit did not return; ran %d times, dropped %d times", id, ran, dropped)
			}
			if ran+dropped == 0 {
				continue
			}
		} else if j.submitErr != nil {
			if ran != 0 || dropped != 0 {
				r.failf("job %d refused (%v) but ran %d times, dropped %d times", id, j.submitErr, ran, dropped)
			}
			switch {
			case j.submitErr == workpool.ErrQueueFull && !j.wait && r.cfg.policy == workpool.DropNewest:
				rejected[0]++
			case j.submitErr == workpool.ErrClosed:
				rejected[1]++
				if !r.closing.Load() {
					r.failf("job %d refused with ErrClosed before any Shutdown or cancel", id)
				}
			case j.wait && j.ctxErr != nil && j.submitErr == j.ctxErr:
				rejected[2]++
			default:
				r.failf("job %d (wait=%v, ctx.Err()=%v) refused with %v", id, j.wait, j.ctxErr, j.submitErr)
			}
			continue
		}
		want.Submitted++
		attempts += uint64(ran)
		panics += uint64(j.panics.Load())
		if r.checkJob(id, j) {
			want.Completed++
			if j.job.kindAt(ran) == jobPanic {
				want.Panicked++
			}
		}
		want.Dropped += uint64(dropped)
		onErrors += uint64(onError)
		if dropped == 1 {
			err := *j.dropErr.Load()
			var de *workpool.DropError
			switch {
			case !errors.As(err, &de):
				r.failf("job %d dropped with %T (%v); want a *DropError", id, err, err)
			case (de.Reason == workpool.ReasonShutdown || de.Reason == workpool.ReasonCanceled) &&
				(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
				deadlineDrops++
			case ran > 0:
				// It waited for a retry: only a hard stop drops it.
				r.failf("job %d dropped after %d attempts with %v (reason %v); want a hard stop's", id, ran, err, de.Reason)
			case de.Reason == workpool.ReasonEvicted && errors.Is(err, workpool.ErrQueueFull) && r.cfg.policy == workpool.DropOldest:
			case de.Reason == workpool.ReasonClosed && errors.Is(err, workpool.ErrClosed):
			default:
				r.failf("job %d dropped with %v (reason %v)", id, err, de.Reason)
			}
		}
	}
	want.Failed = onErrors
	want.Rejected = rejected[0] + rejected[1] + rejected[2]
	// Each attempt ended its job or scheduled a retry, and each job that
	// ran and was then dropped had a retry scheduled that never ran.
	want.Retries = attempts - want.Completed
	got := r.pool.Stats()
	if sizes := r.sizes.Load() | 1<<r.cfg.workers; got.Workers >= 1 && got.Workers <= 8 && sizes&(1<<got.Workers) != 0 {
		want.Workers = got.Workers // the initial size, or one Resize returned nil for
	}
	if got != want {
		r.failf("Stats at rest = %+v;\n want %+v", got, want)
	}
	if got := r.maxActive.Load(); got > r.maxWorkers.Load() {
		r.failf("%d handlers ran at once; workers %d at most", got, r.maxWorkers.Load())
	}
	if r.metrics != nil {
		r.metrics.check(r, want, rejected, attempts, panics)
	}
	r.checkShutdowns(deadlineDrops)

	r.mu.Lock()
	defer r.mu.Unlock()
	if testing.Verbose() {
		t.Logf("config %+v: %+v; shutdowns %+v", r.cfg, want, r.shutdowns)
	}
	if len(r.failures) > 0 {
		t.Errorf("config %+v, script %v", r.cfg, r.script)
		for _, f := range r.failures {
			t.Error(f)
		}
	}
}

// checkJob checks an accepted job's attempts against its plan and the retry
// policy, and that it ended exactly once: by its last attempt, or handed
// to OnDrop, never both, never neither. It reports whether the job ended by
// an attempt (and so counts in Completed). Without a retry policy a job has
// one attempt at most. The handler checked that the attempts were numbered
// 1, 2, 3... and that none ran after OnDrop or OnError.
func (r *fuzzRun) checkJob(id int, j *jobRecord) bool {
	ran, dropped, onError := j.attempts.Load(), j.dropped.Load(), j.onError.Load()
	// A hard stop ends a failing job at once, whatever its attempts left.
	hard := r.cancelled.Load() || r.stopErr != nil
	last := j.job.kindAt(ran)
	for a := int32(1); a < ran; a++ {
		if kind := j.job.kindAt(a); !r.mayRetry(kind) {
			r.failf("job %d (%+v): attempt %d of kind %d ends the job, but %d attempts ran", id, j.job, a, kind, ran)
			break
		}
	}
	switch {
	case dropped > 1:
		r.failf("job %d: dropped %d times (after %d attempts)", id, dropped, ran)
	case dropped == 1:
		if onError != 0 {
			r.failf("job %d: dropped after %d attempts, and OnError called %d times too", id, ran, onError)
		}
		if ran > 0 && !(r.mayRetry(last) && ran < r.cfg.maxAttempts() && hard) {
			r.failf("job %d (%+v): dropped after attempt %d of kind %d; want a retryable failure with attempts left, then a hard stop (hard stop: %v)",
				id, j.job, ran, last, hard)
		}
		if at := j.dropAt.Load(); at != ran {
			r.failf("job %d: dropped after attempt %d, but %d attempts ran", id, at, ran)
		}
		return false
	case ran == 0:
		r.failf("job %d (%+v) accepted: neither ran nor dropped", id, j.job)
		return false
	}
	if !(r.mayEnd(last) || ran == r.cfg.maxAttempts() || hard) {
		r.failf("job %d (%+v): attempt %d of kind %d was its last, with attempts left and no hard stop", id, j.job, ran, last)
	}
	switch {
	case onError > 1:
		r.failf("job %d: OnError called %d times", id, onError)
	case onError == 1:
		if at := j.errorAt.Load(); at != ran {
			r.failf("job %d: OnError called after attempt %d; its last was %d", id, at, ran)
		}
		r.checkOnError(id, last, *j.errorErr.Load())
	case last == jobError || last == jobPanic || last == jobGoexit || last == jobBlock || last == jobPermanent:
		r.failf("job %d (kind %d) ran and failed but OnError was not called", id, last)
	}
	return true
}

// mayRetry reports whether an attempt of kind k may fail in a way the retry
// policy retries (if the job has attempts left and the pool did not stop
// hard).
func (r *fuzzRun) mayRetry(k jobKind) bool {
	switch k {
	case jobError, jobGoexit, jobBlock:
		return true
	case jobPanic:
		return r.cfg.retry.RetryPanics
	case jobOK:
		// On the real clock it may run past the job timeout; its child's
		// Submit may evict a job whose OnDrop ends the handler.
		return r.cfg.jobTimeout && r.cfg.realTime ||
			r.cfg.children && r.cfg.hookGoexit && r.cfg.policy == workpool.DropOldest
	case jobIgnore:
		return r.cfg.jobTimeout && r.cfg.realTime // on the virtual clock it ends in time
	case jobHold:
		return r.cfg.jobTimeout
	}
	return false // jobPermanent
}

// mayEnd reports whether an attempt of kind k may end its job while it has
// attempts left and the pool runs.
func (r *fuzzRun) mayEnd(k jobKind) bool {
	switch k {
	case jobOK, jobIgnore, jobHold, jobPermanent:
		return true
	case jobPanic:
		return !r.cfg.retry.RetryPanics
	}
	return false // jobError, jobGoexit, jobBlock
}

// checkOnError checks the error OnError got for a job whose last attempt
// was of the given kind.
func (r *fuzzRun) checkOnError(id int, kind jobKind, err error) {
	var pe *workpool.PanicError
	ok := false
	switch kind {
	case jobError:
		ok = err == errFuzz
	case jobPermanent:
		var perm *workpool.PermanentError
		ok = errors.As(err, &perm) && perm.Err == errFuzz && workpool.IsPermanent(err)
	case jobPanic:
		ok = errors.As(err, &pe) && pe.Value == fmt.Sprintf("fuzz job %d", id)
	case jobGoexit:
		ok = err == workpool.ErrGoexit
	case jobBlock:
		ok = err == context.DeadlineExceeded || err == context.Canceled
	case jobOK:
		ok = err == workpool.ErrJobTimeout && r.cfg.jobTimeout ||
			// Its child's Submit evicted a job whose OnDrop ended the handler.
			err == workpool.ErrGoexit && r.cfg.children && r.cfg.hookGoexit && r.cfg.policy == workpool.DropOldest
	case jobIgnore, jobHold:
		ok = err == workpool.ErrJobTimeout && r.cfg.jobTimeout
	}
	if !ok {
		r.failf("job %d (kind %d): OnError got %v", id, kind, err)
	}
}

func (r *fuzzRun) checkShutdowns(deadlineDrops uint64) {
	r.mu.Lock()
	calls := r.shutdowns
	r.mu.Unlock()
	shutdownTimeout := time.Hour
	if r.cfg.shortShutdown {
		shutdownTimeout = r.times.short
	}
	for _, c := range calls {
		switch c.err {
		case nil:
			if deadlineDrops > 0 {
				r.failf("Shutdown (%s) = nil, but %d jobs were dropped by a deadline or cancellation", c.whichCall, deadlineDrops)
			}
		case context.DeadlineExceeded, context.Canceled:
		default:
			r.failf("Shutdown (%s) = %v", c.whichCall, c.err)
		}
		if c.statsOK != "" {
			r.failf("Shutdown (%s): %s", c.whichCall, c.statsOK)
		}
		if limit := min(c.limit, shutdownTimeout) + r.times.slack; c.took > limit {
			r.failf("Shutdown (%s) took %v; its deadline was %v", c.whichCall, c.took, limit)
		}
	}
}

// countingMetrics counts every event, to check the Metrics calls against
// Stats. It implements workpool.RetryMetrics too.
type countingMetrics struct {
	submitted atomic.Uint64
	rejected  [8]atomic.Uint64
	dropped   [8]atomic.Uint64
	started   atomic.Uint64
	finished  [8]atomic.Uint64
	retried   atomic.Uint64
	ended     atomic.Uint64 // RetryEnded
}

var _ workpool.RetryMetrics = (*countingMetrics)(nil)

func (m *countingMetrics) JobSubmitted()                                   { m.submitted.Add(1) }
func (m *countingMetrics) JobRejected(r workpool.DropReason)               { m.rejected[r%8].Add(1) }
func (m *countingMetrics) JobDropped(r workpool.DropReason)                { m.dropped[r%8].Add(1) }
func (m *countingMetrics) JobStarted(time.Duration)                        { m.started.Add(1) }
func (m *countingMetrics) JobFinished(_ time.Duration, o workpool.Outcome) { m.finished[o%8].Add(1) }
func (m *countingMetrics) JobRetried(time.Duration)                        { m.retried.Add(1) }
func (m *countingMetrics) RetryEnded()                                     { m.ended.Add(1) }

// check compares the counts with the run's: every attempt (attempts in all,
// panics of them) starts and finishes once; each retry scheduled ends once,
// by its attempt starting or its job being dropped.
func (m *countingMetrics) check(r *fuzzRun, want workpool.Stats, rejected [3]uint64, attempts, panics uint64) {
	sum := func(a *[8]atomic.Uint64) (n uint64) {
		for i := range a {
			n += a[i].Load()
		}
		return n
	}
	if got := m.submitted.Load(); got != want.Submitted {
		r.failf("metrics: JobSubmitted %d; want %d", got, want.Submitted)
	}
	if got := sum(&m.dropped); got != want.Dropped {
		r.failf("metrics: JobDropped %d; want %d", got, want.Dropped)
	}
	if got := m.started.Load(); got != attempts {
		r.failf("metrics: JobStarted %d; want %d", got, attempts)
	}
	if got := sum(&m.finished); got != attempts {
		r.failf("metrics: JobFinished %d; want %d", got, attempts)
	}
	if got := m.finished[workpool.OutcomePanic].Load(); got != panics {
		r.failf("metrics: panic outcomes %d; want %d", got, panics)
	}
	if got, ended := m.retried.Load(), m.ended.Load(); got != want.Retries || ended != want.Retries {
		r.failf("metrics: JobRetried %d, RetryEnded %d; want Retries %d", got, ended, want.Retries)
	}
	if got := m.finished[workpool.OutcomeSuccess].Load(); got != want.Completed-want.Failed {
		r.failf("metrics: success outcomes %d; want %d", got, want.Completed-want.Failed)
	}
	wantRej := [...]struct {
		reason workpool.DropReason
		n      uint64
	}{{workpool.ReasonQueueFull, rejected[0]}, {workpool.ReasonClosed, rejected[1]}, {workpool.ReasonCanceled, rejected[2]}}
	for _, w := range wantRej {
		if got := m.rejected[w.reason].Load(); got != w.n {
			r.failf("metrics: JobRejected(%v) %d; want %d", w.reason, got, w.n)
		}
	}
}
