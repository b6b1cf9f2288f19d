package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

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
// Most inputs run in a synctest bubble: time is virtual, so deadlines are
// exact and cost nothing, and a hang becomes a deadlock panic. One in four
// runs on the real clock, where timers race the workers.
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
)

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
	shortShutdown  bool // WithShutdownTimeout(times.short) instead of an hour
	realTime       bool
	actors         int
}

type jobKind uint8

const (
	jobOK     jobKind = iota
	jobError          // returns errFuzz
	jobPanic          // panics
	jobBlock          // returns ctx.Err() once its context ends
	jobIgnore         // ignores its context for times.ignore, returns nil
	jobHold           // ignores its context until the run releases it
	jobGoexit         // calls runtime.Goexit
	numJobKinds
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
	numOps
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
// 3 handlers submit child jobs, 4 contexts), then pairs: (actor<<4 | op, arg).
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
		actors:        1 + int(flags>>6),
	}
	script := make([][]fuzzOp, cfg.actors)
	for i, n := 4, 0; i+1 < len(data) && n < maxFuzzOps; i, n = i+2, n+1 {
		a := int(data[i]>>4) % cfg.actors
		script[a] = append(script[a], fuzzOp{kind: opKind(data[i]&0x0f) % numOps, arg: data[i+1]})
	}
	return cfg, script
}

type fuzzJob struct {
	id   int32
	kind jobKind
}

var (
	errFuzz    = errors.New("fuzz: job failed")
	errPending = errors.New("fuzz: Submit did not return")
)

// jobRecord is what happened to one job. Written by the pool's goroutines
// (ran, dropped, onError) and by the submitting actor (the rest).
type jobRecord struct {
	ran, dropped, onError atomic.Int32
	dropErr, errorErr     atomic.Pointer[error]

	// Written by the actor that submitted the job, read after the actors
	// finished.
	kind      jobKind
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

	mu        sync.Mutex
	shutdowns []shutdownCall // guarded by mu
	failures  []string       // guarded by mu
}

func newFuzzRun(cfg fuzzConfig, script [][]fuzzOp) *fuzzRun {
	r := &fuzzRun{cfg: cfg, script: script, times: virtualTimes, release: make(chan struct{})}
	if cfg.realTime {
		r.times = realTimes
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
		if err := <-done; err != nil && err != context.DeadlineExceeded && err != context.Canceled && err != errPending {
			r.failf("last Shutdown = %v", err)
		}
		deadline := time.Now().Add(time.Hour)
		for s := r.pool.Stats(); s.Active != 0 || s.Completed+s.Dropped != s.Submitted; s = r.pool.Stats() {
			if time.Now().After(deadline) {
				return fmt.Sprintf("pool not at rest an hour (virtual) after release: %+v", s)
			}
			time.Sleep(r.times.pause) // virtual: lets sleeping handlers finish
		}
		synctest.Wait()
		return ""
	}
	select {
	case err := <-done:
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
	for _, op := range ops {
		switch op.kind {
		case opSubmit:
			r.submitAs(jobKind(op.arg%uint8(numJobKinds)), false, 0, cancelled)
		case opSubmitWait:
			r.submitAs(jobKind(op.arg&0x0f%uint8(numJobKinds)), true, op.arg>>4%4, cancelled)
		case opStart:
			r.pool.Start()
		case opShutdown:
			limits := []time.Duration{0, r.times.tiny, r.times.short, r.times.generous}
			r.shutdown(limits[op.arg%4], fmt.Sprintf("op %d", op.arg%4))
		case opCancelBase:
			r.closing.Store(true)
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
				r.submitAs(jobKind((int(op.arg)+i*5)%int(numJobKinds)), false, 0, cancelled)
			}
		}
	}
}

// submit submits one new job and records the result.
func (r *fuzzRun) submit(kind jobKind, wait bool, ctxKind byte) {
	r.submitAs(kind, wait, ctxKind, false)
}

func (r *fuzzRun) submitAs(kind jobKind, wait bool, ctxKind byte, afterCancel bool) {
	id := r.nextID.Add(1)
	rec := &r.jobs[id]
	rec.kind, rec.wait, rec.afterCancel = kind, wait, afterCancel
	job := fuzzJob{id: id, kind: kind}
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
		s := r.pool.Stats()
		if s.Completed+s.Dropped != s.Submitted || s.Queued != 0 || s.Active != 0 {
			call.statsOK = fmt.Sprintf("Stats right after Shutdown = nil: %+v", s)
		} else if got := uint64(r.returned.Load()); got != s.Completed {
			call.statsOK = fmt.Sprintf("handlers returned %d at Shutdown = nil; Completed %d", got, s.Completed)
		}
	}
	r.mu.Lock()
	r.shutdowns = append(r.shutdowns, call)
	r.mu.Unlock()
}

func (r *fuzzRun) handle(ctx context.Context, j fuzzJob) error {
	rec := &r.jobs[j.id]
	rec.ran.Add(1)
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
	switch j.kind {
	case jobOK:
		if r.cfg.children && r.nextID.Load() < maxFuzzOps*16 {
			r.submit(jobError, false, 0) // from inside the pool, maybe during shutdown
		}
	case jobError:
		return errFuzz
	case jobPanic:
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
	}
	return nil
}

func (r *fuzzRun) onDrop(j fuzzJob, err error) {
	rec := &r.jobs[j.id]
	rec.dropped.Add(1)
	rec.dropErr.Store(&err)
	r.hookFault("OnDrop")
}

func (r *fuzzRun) onError(j fuzzJob, err error) {
	rec := &r.jobs[j.id]
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
	if s.Active < 0 || s.Active > s.Workers || s.Queued < 0 || s.Queued > s.QueueCapacity {
		r.failf("running Stats = %+v; want 0 <= Active <= Workers, 0 <= Queued <= QueueCapacity", s)
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
	var onErrors, deadlineDrops uint64
	var rejected [3]uint64 // queue full, closed, ctx
	n := int(r.nextID.Load())
	for id := 1; id <= n; id++ {
		j := &r.jobs[id]
		ran, dropped, onError := j.ran.Load(), j.dropped.Load(), j.onError.Load()
		if j.afterCancel && j.submitErr != workpool.ErrClosed && j.submitErr != errPending {
			r.failf("job %d submitted after the base context's cancel returned: %v; want ErrClosed", id, j.submitErr)
		}
		if j.submitErr == errPending {
			// An evicted job's OnDrop ended the submitter. The eviction
			// pushes the new job before it drops the old one, so the new
			// job may have been accepted (and then ran or was dropped once)
			// or not (if OnDrop ended an earlier round of the eviction).
			if !r.cfg.hookGoexit || ran+dropped > 1 {
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
		if ran+dropped != 1 {
			r.failf("job %d (%d) accepted: ran %d times, dropped %d times; want one of them once", id, j.kind, ran, dropped)
		}
		want.Completed += uint64(ran)
		want.Dropped += uint64(dropped)
		if ran == 1 && j.kind == jobPanic {
			want.Panicked++
		}
		if onError > ran {
			r.failf("job %d: OnError called %d times for %d runs", id, onError, ran)
		}
		onErrors += uint64(onError)
		if onError > 0 {
			r.checkOnError(id, j)
		} else if ran == 1 && (j.kind == jobError || j.kind == jobPanic || j.kind == jobGoexit) {
			r.failf("job %d (kind %d) ran and failed but OnError was not called", id, j.kind)
		}
		if dropped == 1 {
			err := *j.dropErr.Load()
			var de *workpool.DropError
			switch {
			case !errors.As(err, &de):
				r.failf("job %d dropped with %T (%v); want a *DropError", id, err, err)
			case de.Reason == workpool.ReasonEvicted && errors.Is(err, workpool.ErrQueueFull) && r.cfg.policy == workpool.DropOldest:
			case de.Reason == workpool.ReasonClosed && errors.Is(err, workpool.ErrClosed):
			case (de.Reason == workpool.ReasonShutdown || de.Reason == workpool.ReasonCanceled) &&
				(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
				deadlineDrops++
			default:
				r.failf("job %d dropped with %v (reason %v)", id, err, de.Reason)
			}
		}
	}
	want.Failed = onErrors
	want.Rejected = rejected[0] + rejected[1] + rejected[2]
	if got := r.pool.Stats(); got != want {
		r.failf("Stats at rest = %+v;\n want %+v", got, want)
	}
	if got := r.maxActive.Load(); int(got) > r.cfg.workers {
		r.failf("%d handlers ran at once; workers %d", got, r.cfg.workers)
	}
	if r.metrics != nil {
		r.metrics.check(r, want, rejected)
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

// checkOnError checks the error OnError got for a job of the given kind.
func (r *fuzzRun) checkOnError(id int, j *jobRecord) {
	err := *j.errorErr.Load()
	var pe *workpool.PanicError
	ok := false
	switch j.kind {
	case jobError:
		ok = err == errFuzz
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
		r.failf("job %d (kind %d): OnError got %v", id, j.kind, err)
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
// Stats.
type countingMetrics struct {
	submitted atomic.Uint64
	rejected  [8]atomic.Uint64
	dropped   [8]atomic.Uint64
	started   atomic.Uint64
	finished  [8]atomic.Uint64
}

func (m *countingMetrics) JobSubmitted()                                   { m.submitted.Add(1) }
func (m *countingMetrics) JobRejected(r workpool.DropReason)               { m.rejected[r%8].Add(1) }
func (m *countingMetrics) JobDropped(r workpool.DropReason)                { m.dropped[r%8].Add(1) }
func (m *countingMetrics) JobStarted(time.Duration)                        { m.started.Add(1) }
func (m *countingMetrics) JobFinished(_ time.Duration, o workpool.Outcome) { m.finished[o%8].Add(1) }

func (m *countingMetrics) check(r *fuzzRun, want workpool.Stats, rejected [3]uint64) {
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
	if got := m.started.Load(); got != want.Completed {
		r.failf("metrics: JobStarted %d; want %d", got, want.Completed)
	}
	if got := sum(&m.finished); got != want.Completed {
		r.failf("metrics: JobFinished %d; want %d", got, want.Completed)
	}
	if got := m.finished[workpool.OutcomePanic].Load(); got != want.Panicked {
		r.failf("metrics: panic outcomes %d; want %d", got, want.Panicked)
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
