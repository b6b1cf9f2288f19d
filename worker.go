package workpool

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// worker is one worker's state. Its counters are written only by the worker
// goroutine (so no two goroutines write one cache line) and read by Stats and
// Shutdown. They are incremented in the order started, completed, failed,
// panicked, and read in the reverse order, so a snapshot always has
// panicked <= failed <= completed <= started.
type worker struct {
	started   atomic.Uint64 // jobs whose handler was called
	completed atomic.Uint64 // jobs whose handler finished, hooks included
	failed    atomic.Uint64
	panicked  atomic.Uint64

	// Owned by the worker goroutine.
	ctx      *jobContext // shared by the jobs of the current bucket; nil if none
	ctxUntil time.Time   // the current bucket ends here

	_ [128 - 4*8 - 8 - 24]byte // one worker per 128 bytes: no false sharing
}

// work is a worker goroutine's loop: pop a job, run it, park when there is
// none, exit once intake is closed and the queue is empty, or the pool
// stopped hard.
func (p *Pool[T]) work(w *worker) {
	exited := false
	defer func() {
		if !exited {
			// A handler called runtime.Goexit. run has accounted for its job;
			// a new goroutine takes this worker's place so the pool keeps its
			// size.
			go p.work(w)
			return
		}
		w.retire()
		if p.live.Add(-1) == 0 {
			p.signal()
		}
	}()
	for {
		job, stamp, ok := p.q.pop()
		if !ok {
			if !p.park(w) {
				break
			}
			continue
		}
		if p.waiters.Load() > 0 {
			p.signalRoom()
		}
		if p.stopping() {
			// Dequeued after a hard stop: it must not run.
			p.drop(job, p.abortReason, p.abortErr, true)
			break
		}
		p.run(w, job, stamp)
	}
	exited = true
}

// park waits until there may be a job to pop. It returns false when the
// worker should exit: intake is closed and the queue is empty.
func (p *Pool[T]) park(w *worker) bool {
	if w.ctx != nil && w.ctx.armed() {
		// Release the timer of an idle worker's context; a context a job
		// leaked now reports Canceled.
		w.retire()
	}
	if p.q.closed() {
		if !p.q.pending() {
			return false
		}
		yield() // a push that claimed its place before close is finishing
		return true
	}
	// Announce, then look once more: a submitter pushes, then looks at
	// sleepers, so one of us sees the other.
	p.sleepers.Add(1)
	if (p.q.pending() || p.q.closed()) && p.claimSleeper() {
		return true
	}
	<-p.wake
	return true
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
// Panic policy: a panicking handler is recovered here, the worker keeps
// serving, and OnError receives a *PanicError with the value and the stack.
// runtime.Goexit cannot be stopped: the deferred function still accounts for
// the job (failed, ErrGoexit), and work replaces the goroutine.
func (p *Pool[T]) run(w *worker, job T, stamp int64) {
	w.started.Add(1)
	if p.aborted.Load() {
		p.signal() // a hard stop may be waiting for every job to start or drop
	}
	ctx := p.runCtx
	var jc *jobContext
	var start time.Time
	if p.timeout > 0 || p.timed {
		start = time.Now()
	}
	if p.timeout > 0 {
		jc = w.context(p.runCtx, start, p.timeout, p.bucket)
		ctx = jc
	}
	if p.timed {
		p.metrics.JobStarted(time.Duration(int64(start.Sub(p.epoch)) - stamp))
	}

	var err error
	returned := false
	defer func() {
		outcome := OutcomeSuccess
		switch {
		case !returned:
			if v := recover(); v != nil {
				err, outcome = &PanicError{Value: v, Stack: debug.Stack()}, OutcomePanic
			} else {
				err, outcome = ErrGoexit, OutcomeError
			}
		case err != nil:
			outcome = OutcomeError
		}
		var ran time.Duration
		if p.timeout > 0 || p.timed {
			end := time.Now()
			ran = end.Sub(start)
			if jc != nil && outcome != OutcomePanic && end.After(jc.deadline) {
				outcome = OutcomeTimeout
				if err == nil {
					err = ErrJobTimeout
				}
			}
		}
		p.finish(w, job, err, outcome, ran)
	}()
	err = p.handler(ctx, job)
	returned = true
}

// finish reports a finished job and counts it. The counting comes after
// OnError in a defer, so that a hook calling runtime.Goexit (as t.FailNow
// does) cannot leave the job uncounted (TestHookGoexit).
func (p *Pool[T]) finish(w *worker, job T, err error, outcome Outcome, ran time.Duration) {
	if err != nil {
		if p.log != nil {
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

// count records a finished job, in the order Stats relies on (see worker).
func (p *Pool[T]) count(w *worker, failed bool, outcome Outcome, ran time.Duration) {
	p.metrics.JobFinished(ran, outcome)
	w.completed.Add(1)
	if failed {
		w.failed.Add(1)
	}
	if outcome == OutcomePanic {
		w.panicked.Add(1)
	}
}

// drop hands an accepted job that will not run to OnDrop and counts it once
// OnDrop has returned: Shutdown waits for the count. With wake it then
// signals Shutdown if intake is closed, as Shutdown may be waiting for this
// very drop. The count and the signal are deferred past OnDrop so that a hook
// calling runtime.Goexit cannot skip them (TestHookGoexit).
func (p *Pool[T]) drop(job T, reason DropReason, err error, wake bool) {
	p.metrics.JobDropped(reason)
	if p.log != nil {
		p.log.Warn("workpool dropped a job", "reason", reason.String(), "err", err)
	}
	if p.onDrop != nil {
		defer p.countDrop(wake)
		p.callHook("OnDrop", p.onDrop, job, err)
		return
	}
	p.countDrop(wake)
}

func (p *Pool[T]) countDrop(wake bool) {
	p.dropped.Add(1)
	if wake && p.q.closed() {
		p.signal()
	}
}

// callHook runs a user hook; a panic in it is logged and does not take the
// worker or the submitter down.
func (p *Pool[T]) callHook(name string, fn func(T, error), job T, err error) {
	defer func() {
		if v := recover(); v != nil && p.log != nil {
			p.log.Error("workpool hook panicked", "hook", name, "panic", v)
		}
	}()
	fn(job, err)
}

// context returns the context for a job starting at now: the current
// bucket's, or a new one.
func (w *worker) context(parent context.Context, now time.Time, timeout, bucket time.Duration) *jobContext {
	if w.ctx != nil && now.Before(w.ctxUntil) {
		return w.ctx
	}
	w.retire()
	w.ctx = newJobContext(parent, now.Add(timeout+bucket))
	w.ctxUntil = now.Add(bucket)
	return w.ctx
}

// retire ends the current bucket's context.
func (w *worker) retire() {
	if w.ctx != nil {
		w.ctx.cancel(context.Canceled)
		w.ctx = nil
	}
}

func yield() { runtime.Gosched() }
