package workpool

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"
)

// worker is one worker's state.
//
// Its progress is one word, state, written only by the worker goroutine and
// read by Stats and Shutdown: 2*finished, plus 1 while a job is running. A
// job's start is published at once (a hard stop must see it, see run), but
// its end is published lazily, with the next job's start or when the worker
// finds the queue empty: one atomic store per job instead of two. failed and
// panicked are bumped only after the state that counts the job as finished
// is published, so a snapshot that reads them first always has
// panicked <= failed <= finished.
type worker struct {
	workerState
	_ [(128 - unsafe.Sizeof(workerState{})%128) % 128]byte // no false sharing between workers
}

type workerState struct {
	state    atomic.Uint64
	failed   atomic.Uint64
	panicked atomic.Uint64

	idx     int  // place in the crew; set when created, never changed
	running bool // a goroutine serves this worker (or is about to); guarded by Pool.mu

	// Owned by the worker goroutine (and handed over with it on Goexit).
	started uint64    // jobs whose handler was called
	ctx     ctxSource // the source of job contexts (see jobCtx)
	// lastEnd is when the previous handler returned, on the pool's clock;
	// fresh says it may stand in for the next job's start, because the
	// worker popped that job at once, with no hook run and no wait between.
	// It saves one clock read per job (a clock read costs 30-50ns here).
	lastEnd int64
	timer   *time.Timer // for rate-limit waits; nil until the first wait
	// attempt is the attempt of the job being run, for a retried one (2 or
	// more); 0 otherwise, meaning the first. Kept here rather than passed to
	// run: a parameter cost the first attempts 6-9ns per job (BenchmarkSubmit,
	// AMD), in run's frame and deferred closure. (int32 beside the bools:
	// workerState must stay within 128 bytes, see TestWorkerSize.)
	attempt     int32
	fresh       bool
	pendingDone bool         // the last job finished; not yet published
	pendFailed  bool         // the last job failed; not yet counted
	pendPanic   bool         // the last job panicked; not yet counted
	counts      workerCounts // dispatch counters; empty unless built for them
}

// begin publishes the start of a job, and the end of the previous one.
func (w *worker) begin() {
	w.started++
	w.state.Store(2*(w.started-1) + 1)
	w.pendingDone = false
	w.countFailure()
}

// idle publishes the end of the last job, if it is not yet.
func (w *worker) idle() {
	if w.pendingDone {
		w.state.Store(2 * w.started)
		w.pendingDone = false
		w.countFailure()
	}
}

func (w *worker) countFailure() {
	if w.pendFailed {
		w.failed.Add(1)
		w.pendFailed = false
	}
	if w.pendPanic {
		w.panicked.Add(1)
		w.pendPanic = false
	}
}

// snapshot reads the worker's counters, failures first.
func (w *worker) snapshot() (started, finished, failed, panicked uint64) {
	panicked = w.panicked.Load()
	failed = w.failed.Load()
	st := w.state.Load()
	return (st + 1) / 2, st / 2, failed, panicked
}

// work is a worker goroutine's loop: take a job (a retry that is due first,
// then the queue's oldest), run it, park when there is none, exit once
// intake is closed and no job can appear any more, when the pool stopped
// hard, or when Resize shrank the pool past this worker.
func (p *Pool[T]) work(w *worker) {
	exited, retired := false, false
	w.fresh = false // no previous job on this goroutine: its end may be long past
	defer func() {
		if retired {
			return // retire did the bookkeeping; w may already serve another goroutine
		}
		if !exited {
			// A handler or a hook called runtime.Goexit (serve accounted
			// for the job), or a panic outside a handler is on its way up:
			// a new goroutine takes this worker's place so the pool keeps
			// its size.
			go p.work(w)
			return
		}
		w.idle()
		if p.live.Add(-1) == 0 {
			p.signal()
		}
	}()
	for {
		switch p.serve(w) {
		case serveRetired:
			retired = true
			return
		case serveExited:
			exited = true
			return
		}
		// A handler panicked: serve recovered and accounted for it.
	}
}

// serveEnd says why serve returned.
type serveEnd uint8

const (
	servePanicked serveEnd = iota // a handler panicked; call serve again
	serveExited                   // the worker should exit
	serveRetired                  // retire did the bookkeeping
)

// inflight is the job a worker's handler is running, for the deferred
// recovery in serve.
type inflight[T any] struct {
	job     T
	jc      *jobCtx
	start   int64
	running bool // the handler was called and has not returned
}

// serve is work's loop. Recovering a handler's panic takes a deferred
// function in a frame below the handler; serve's is set up once per call,
// not once per job as a defer in run would be (that cost 13% of the serial
// SubmitWait benchmark's time per job, AMD, abtest, where the workers are
// the bottleneck). After a panic, serve accounts for the job and returns,
// and work calls it again. If a handler calls runtime.Goexit, serve
// accounts for the job and work's deferred function replaces the
// goroutine.
func (p *Pool[T]) serve(w *worker) (end serveEnd) {
	var cur inflight[T]
	w.attempt = 0 // a retried attempt that panicked or called runtime.Goexit may have left it set
	defer func() {
		if !cur.running {
			return // not a handler's panic: a panic elsewhere goes on up
		}
		cur.running = false
		var err error
		outcome := OutcomeError
		if v := recover(); v != nil {
			err, outcome = &PanicError{Value: v, Stack: debug.Stack()}, OutcomePanic
		} else {
			err = ErrGoexit
		}
		job, jc, start := cur.job, cur.jc, cur.start
		cur = inflight[T]{} // keep no finished job reachable
		p.ended(w, job, jc, start, err, outcome)
		end = servePanicked
	}()
	for {
		if p.pastSize(w) && p.retire(w) {
			return serveRetired
		}
		if p.retry != nil && p.retry.readyN.Load() > 0 {
			if e := p.retry.take(p); e != nil {
				if !p.startable(w, e.job) {
					return serveExited
				}
				w.attempt = int32(e.attempt)
				p.run(w, &cur, e.job, e.stamp)
				w.attempt = 0
				continue
			}
		}
		job, stamp, ok := p.q.pop()
		if !ok {
			w.counts.failedPop()
			w.idle()
			w.fresh = false
			if !p.park(w) {
				return serveExited
			}
			continue
		}
		if p.waiters.Load() > 0 {
			p.signalRoom()
		}
		if (p.limiter.Load() != nil || p.stopping()) && !p.startable(w, job) {
			return serveExited
		}
		p.run(w, &cur, job, stamp)
	}
}

// startable is called with a job the worker took, before it runs it: it
// waits for a rate-limit token if the pool has a limit, and drops the job
// instead if the pool stopped hard (before or during that wait); the
// worker then exits.
func (p *Pool[T]) startable(w *worker, job T) bool {
	p.awaitToken(w)
	if p.stopping() {
		// Taken after a hard stop: it must not run.
		w.idle()
		p.drop(job, p.abortReason, p.abortErr, true)
		return false
	}
	return true
}

// workAvailable reports whether a worker that looks now may find something
// to do: a queued job (possibly still being written), a due retry, or
// intake closed with nothing left that could still appear, so it can exit.
// Retries that are not due yet keep workers parked after intake closed:
// whoever makes one due, or makes the last one go, wakes them.
func (p *Pool[T]) workAvailable() bool {
	if p.q.pending() || p.retryReady() {
		return true
	}
	return p.q.closed() && (p.evicting.Load() > 0 || !p.retryWaiting())
}

// park waits until there may be work. It returns false when the worker
// should exit: intake is closed and no job can appear any more.
func (p *Pool[T]) park(w *worker) bool {
	if p.q.shutting() {
		if p.queueFinal() {
			return false
		}
		if p.q.pending() || p.evicting.Load() > 0 || p.retryReady() {
			w.counts.yielded()
			yield() // a push or an eviction that began before close is finishing
			return true
		}
		// Only retries that are not due yet: park until one is.
	}
	// Under a steady stream, the next job is usually a moment away: yielding
	// a few times costs less than parking and being woken through the
	// scheduler, and spares the submitter the wake-up.
	// The loop polls only ready, never tail (pending, closed): the producer
	// writes tail on every push, and a worker reading it between pushes
	// makes each push fetch the line back from this core, which on CPUs
	// with slow cross-core transfers costs more than the job. A close is
	// seen below, before parking, or by the wake-up that close sends.
	for range p.idleSpinRounds() {
		w.counts.yielded()
		yield()
		if p.q.ready() || p.retryReady() {
			return true
		}
	}
	// Announce, then look once more: a submitter pushes (a retry timer makes
	// a retry due, Resize shrinks the pool), then looks at sleepers, so one
	// of us sees the other.
	p.sleepers.Add(1)
	w.counts.polledTail()
	if (p.workAvailable() || p.pastSize(w)) && p.claimSleeper() {
		return true
	}
	w.counts.parked()
	<-p.wake
	return true
}

// idleSpinRounds is how many times an idle worker yields, looking for a job
// after each, before it parks. With more workers than Ps, a yield hands the
// P to a runnable submitter or worker, and the full spinRounds pay. With no
// more workers than Ps, the P's other takers are mostly the pool's own idle
// workers, so the yields only add polls of the line the producer writes
// next, and the workers race each other for the job: one round then. On
// the Turin-class VM (abtest, 8 rounds against the full spin):
// BenchmarkSubmitPaced -27% to -33% (8 of 8 faster), the serial and
// parallel benchmarks within their noise; one round for 8 workers on 2 Ps
// had cost SubmitParallel +14% to +40%.
func (p *Pool[T]) idleSpinRounds() int {
	if p.size.Load() <= p.q.procs.Load() {
		return 1
	}
	return spinRounds
}

// claimSleeper takes one announced sleeper, which the caller must then wake
// with a token on p.wake (or which is the caller itself).
func (p *Pool[T]) claimSleeper() bool {
	for {
		n := p.sleepers.Load()
		if n <= 0 {
			return false
		}
		if p.sleepers.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// wakeAll wakes every parked worker, so they see that intake closed.
func (p *Pool[T]) wakeAll() {
	for p.claimSleeper() {
		p.wake <- struct{}{}
	}
}

// run calls the handler for one job and accounts for how it ended.
//
// Panic policy: a panicking handler is recovered (in serve, from cur), the
// worker keeps serving, and OnError receives a *PanicError with the value
// and the stack. runtime.Goexit cannot be stopped: serve's deferred
// function still accounts for the job (failed, ErrGoexit), and work
// replaces the goroutine.
//
// With a retry policy, a failed attempt that may be retried is handed to the
// retry schedule instead of counting as finished (see retryLater);
// w.attempt says which attempt runs.
func (p *Pool[T]) run(w *worker, cur *inflight[T], job T, stamp int64) {
	w.begin()
	if p.aborted.Load() {
		p.signal() // a hard stop may be waiting for every job to start or drop
	}
	ctx := p.runCtx
	var jc *jobCtx
	var start int64
	if p.timeout > 0 || p.timed {
		if p.coarse != nil {
			start = p.jobStart()
		} else if w.fresh {
			start = w.lastEnd
		} else {
			start = p.clock()
		}
	}
	if p.timeout > 0 {
		deadline := start + int64(p.timeout+p.slack)
		if deadline < start {
			deadline = math.MaxInt64 // a timeout of centuries: never
		}
		jc = w.ctx.next(deadline)
		ctx = jc
	}
	if w.attempt > 1 {
		ctx = withAttempt(ctx, int(w.attempt)) // only retries pay for it
	}
	if p.timed {
		p.metrics.JobStarted(time.Duration(max(start-stamp, 0)))
	}

	cur.job, cur.jc, cur.start, cur.running = job, jc, start, true
	err := p.handler(ctx, job)
	cur.running = false
	var zero T
	cur.job, cur.jc = zero, nil // keep no finished job, nor its context's slab, reachable
	outcome := OutcomeSuccess
	if err != nil {
		outcome = OutcomeError
	}
	p.ended(w, job, jc, start, err, outcome)
}

// ended accounts for a job whose handler returned (outcome success or
// error) or panicked (OutcomePanic, or OutcomeError with ErrGoexit).
func (p *Pool[T]) ended(w *worker, job T, jc *jobCtx, start int64, err error, outcome Outcome) {
	var ran time.Duration
	var end int64
	if p.timeout > 0 || p.timed {
		if p.coarse != nil { // only with a job timeout, so jc is set
			end = p.jobEnd(jc)
		} else {
			end = p.clock()
		}
		ran = time.Duration(end - start)
		if jc != nil && outcome != OutcomePanic && end >= jc.dl {
			outcome = OutcomeTimeout
			if err == nil {
				err = ErrJobTimeout
			}
		}
		w.lastEnd, w.fresh = end, err == nil
	}
	if jc != nil {
		// The job's context ends as it returns, as context.WithTimeout's
		// cancel would (one compare-and-swap if nobody watches it).
		jc.finish(end)
	}
	if err != nil && p.retry != nil && p.retryLater(w, job, err, outcome, ran) {
		return
	}
	p.finish(w, job, err, outcome, ran)
}

// finish reports a finished job and counts it. The counting comes after
// OnError in a defer, so that a hook calling runtime.Goexit (as t.FailNow
// does) cannot leave the job uncounted (TestHookGoexit).
func (p *Pool[T]) finish(w *worker, job T, err error, outcome Outcome, ran time.Duration) {
	if err != nil {
		if pe, ok := err.(*PanicError); ok {
			p.reportPanic(pe)
		} else if p.log != nil {
			p.log.Warn("workpool job failed", "outcome", outcome.String(), "err", err)
		}
		if p.onError != nil {
			defer p.count(w, true, outcome, ran)
			p.callHook("OnError", p.onError, job, err)
			return
		}
	}
	p.count(w, err != nil, outcome, ran)
}

// reportPanic logs a handler's panic: to the pool's logger, or, if there is
// neither a logger nor an OnError hook to hear of it, to slog.Default(), so
// that a panic is never silent.
func (p *Pool[T]) reportPanic(pe *PanicError) {
	log := p.log
	if log == nil {
		if p.onError != nil {
			return // OnError receives it
		}
		log = slog.Default()
	}
	log.Error("workpool job panicked", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
}

// count records a finished job, in the order Stats relies on (see worker).
func (p *Pool[T]) count(w *worker, failed bool, outcome Outcome, ran time.Duration) {
	p.metrics.JobFinished(ran, outcome)
	w.pendingDone = true
	w.pendFailed = failed
	w.pendPanic = outcome == OutcomePanic
}

// drop hands an accepted job that will not run to OnDrop and counts it once
// OnDrop has returned: Shutdown waits for the count. With wake it then
// signals Shutdown if intake is closed, as Shutdown may be waiting for this
// very drop. The count and the signal are deferred past OnDrop so that a hook
// calling runtime.Goexit cannot skip them (TestHookGoexit). Each drop is
// logged at Debug; Shutdown logs the counts per reason once (logDrops).
func (p *Pool[T]) drop(job T, reason DropReason, err error, wake bool) {
	p.metrics.JobDropped(reason)
	if p.log != nil && p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("workpool dropped a job", "reason", reason.String(), "err", err, "job", job)
	}
	if p.onDrop != nil {
		defer p.countDrop(reason, wake)
		// A DropError of its own for the hook, which may keep or change it.
		p.callHook("OnDrop", p.onDrop, job, &DropError{Reason: reason, Err: err})
		return
	}
	p.countDrop(reason, wake)
}

func (p *Pool[T]) countDrop(reason DropReason, wake bool) {
	p.droppedBy[reason].Add(1)
	p.dropped.Add(1)
	if wake && p.q.closed() {
		p.signal()
	}
}

// callHook runs a user hook; a panic in it is logged and does not take the
// worker or the submitter down.
func (p *Pool[T]) callHook(name string, fn func(T, error), job T, err error) {
	defer func() {
		if v := recover(); v != nil {
			log := p.log
			if log == nil {
				log = slog.Default() // never silent, as a handler's panic
			}
			if log.Enabled(context.Background(), slog.LevelError) { // the stack is dear to take
				log.Error("workpool hook panicked", "hook", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}
	}()
	fn(job, err)
}

func yield() { runtime.Gosched() }

// spinRounds is how many times an idle worker, or SubmitWait on a full
// queue, yields before it parks.
const spinRounds = 4
