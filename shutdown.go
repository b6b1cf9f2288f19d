package workpool

import (
	"context"
	"time"
)

// Shutdown closes intake at once (Submit and SubmitWait return ErrClosed
// from then on) and waits until every accepted job has finished: queued jobs
// still run, and running jobs keep a live context. It returns nil once every
// handler has returned; those returns happen before Shutdown returns.
//
// Shutdown gives up at the earlier of ctx's end and the shutdown timeout
// (counted from the first call). Then the pool stops hard: running jobs'
// contexts are cancelled, jobs not yet started are handed to OnDrop with the
// deadline's error, and Shutdown returns that error (context.DeadlineExceeded
// or context.Canceled) as soon as those drops are done, without waiting for
// handlers that ignore their context.
//
// Shutdown may be called more than once and concurrently; each call waits
// under its own ctx, and the shutdown timeout counts from the first call. If
// the pool already stopped hard (its base context ended, or an earlier
// call's ctx ended), Shutdown waits for the workers to exit and returns that
// stop's error, unless its own deadline passes first. A call made after
// the pool finished returns at once what the stop returned (nil after a
// graceful one); while it has not, a call made after the shutdown timeout
// has passed stops the pool hard and returns context.DeadlineExceeded. On a
// pool that was never started it hands queued jobs to OnDrop with ErrClosed
// and returns nil.
//
// Do not call Shutdown from a handler: it would wait for its own job until
// the deadline.
func (p *Pool[T]) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	started := p.shutdownCalled()
	p.closeIntake()
	timer := time.NewTimer(p.shutdownTimeout - time.Since(started)) // no overflow for huge timeouts
	defer timer.Stop()
	for {
		ev := p.event()
		if p.finished() {
			break
		}
		select {
		case <-ev: // a worker exited or a job was accounted for: look again
		case <-ctx.Done(): // the caller's deadline: stop hard
			return p.stopHard(ctx.Err())
		case <-timer.C: // the shutdown timeout, from the first call: stop hard
			return p.stopHard(context.DeadlineExceeded)
		}
	}
	p.release()
	p.logDrops()
	if p.aborted.Load() {
		return p.abortErr
	}
	p.logInfo("workpool stopped")
	return nil
}

// logDrops logs, once, how many accepted jobs the pool dropped, by reason:
// one line where each drop used to make its own (they are at Debug).
// It counts the drops since shutdown began (intake closed), so evictions
// long before do not show.
func (p *Pool[T]) logDrops() {
	if p.log == nil {
		return
	}
	p.dropsLogged.Do(func() {
		p.mu.Lock()
		before := p.dropsAtClose
		p.mu.Unlock()
		var total uint64
		var args []any
		for r := range numReasons {
			if n := p.droppedBy[r].Load() - before[r]; n > 0 {
				total += n
				args = append(args, r.String(), n)
			}
		}
		if total > 0 {
			p.log.Warn("workpool dropped jobs", append([]any{"total", total}, args...)...)
		}
	})
}

// stopHard stops the pool at a passed shutdown deadline and waits only for
// the drops.
func (p *Pool[T]) stopHard(err error) error {
	p.abort(err, ReasonShutdown)
	p.release()
	p.awaitAccounted()
	p.logDrops()
	return err
}

// awaitAccounted waits until every accepted job has started or been
// dropped: after a hard stop, the drops are then done.
func (p *Pool[T]) awaitAccounted() {
	for {
		ev := p.event()
		if p.accounted() {
			return
		}
		<-ev
	}
}

// shutdownCalled returns when Shutdown was first called (now, on the first
// call). The shutdown timeout counts from there, not from when intake closed:
// the base context may have closed it long before
// (TestSynctestShutdownTimeoutAfterBaseCancel).
func (p *Pool[T]) shutdownCalled() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutdownAt.IsZero() {
		p.shutdownAt = time.Now()
	}
	return p.shutdownAt
}

// closeIntake begins shutdown, once.
func (p *Pool[T]) closeIntake() {
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		return
	}
	wasNew := p.state == stateNew
	for r := range numReasons {
		p.dropsAtClose[r] = p.droppedBy[r].Load()
	}
	p.state = stateClosed
	// The queue closes before IsRunning turns false: a Submit that starts
	// after IsRunning reported false must be refused (TestGracefulShutdown).
	p.q.close()
	p.running.Store(false)
	close(p.closing)
	p.mu.Unlock()

	p.logInfo("workpool shutting down", "queued", p.q.len())
	p.wakeAll()
	if wasNew {
		// No worker will ever run: the queued jobs go back to the caller,
		// with the hard stop's reason if there is one. stopping also sees a
		// base context that ended before its watcher ran
		// (TestBaseCancelThenShutdownNeverStarted).
		if p.stopping() {
			p.drain(p.abortReason, p.abortErr)
		} else {
			p.drain(ReasonClosed, ErrClosed)
		}
		p.signal()
	}
}

// abort stops the pool hard: the first call closes intake, cancels running
// jobs' contexts and records err and reason; every call then drops the jobs
// not yet started with the recorded reason and error.
func (p *Pool[T]) abort(err error, reason DropReason) {
	p.markAborted(err, reason)
	p.dropRetries() // before drain: waiting retries keep the queue from final
	// Every caller drains (pops are safe to race), so that the drain never
	// depends on one goroutine that an OnDrop hook might end.
	p.drain(p.abortReason, p.abortErr)
	p.signal()
}

// markAborted records the hard stop, once: intake closes and running jobs'
// contexts are cancelled. It calls no hook.
func (p *Pool[T]) markAborted(err error, reason DropReason) {
	p.abortOnce.Do(func() {
		p.abortErr, p.abortReason = err, reason
		// Running jobs' contexts end with the base context's error if it
		// ended, context.Canceled otherwise: the unwatched ones see the stop
		// when asked, the watched ones are children of the run context.
		code := endCanceled
		if reason == ReasonCanceled {
			code = endBase
		}
		p.home.markStopped(code)
		p.stopClock() // jobs still running end on the real clock
		p.aborted.Store(true)
		p.closeIntake()
		if code != endBase {
			p.cancelRun()
		}
		// else the base context cancels the run context, its child, itself,
		// with its own error and cause: cancelling it here might come first
		// and give it Canceled with no cause.
		p.logWarn("workpool stopping hard", "reason", reason.String(), "err", err)
	})
}

// abortByBase stops the pool hard because its base context ended.
// Like a Shutdown that gives up, it then waits for the drops and logs them,
// on the watcher's own goroutine: nobody may call Shutdown for a while.
func (p *Pool[T]) abortByBase() {
	p.abort(p.base.Err(), ReasonCanceled)
	p.awaitAccounted()
	p.logDrops()
}

// stopping reports whether the pool stopped hard, or is about to because its
// base context ended. The worker asks before it starts each job: the
// base context's watcher runs on its own goroutine and may not have
// run yet when a handler that saw the cancellation returns. It only marks the
// stop and leaves the drain to the watcher: a drain calls OnDrop, which may
// end the worker's goroutine (runtime.Goexit) while it holds a dequeued job
// (testdata/fuzz/FuzzPool/hooks_goexit_worker_holding_job).
func (p *Pool[T]) stopping() bool {
	if p.aborted.Load() {
		return true
	}
	if p.baseDone == nil {
		return false // context.Background and the like never end
	}
	select {
	case <-p.baseDone:
		p.markAborted(p.base.Err(), ReasonCanceled)
		return true
	default:
		return false
	}
}

// drain drops every queued job. Intake must be closed. The caller signals
// once it returns; if OnDrop ends the goroutine instead (runtime.Goexit, as
// t.FailNow does), a new goroutine finishes the drain and signals, or the
// jobs left in the queue would never be accounted for (TestHookGoexitInDrain).
func (p *Pool[T]) drain(reason DropReason, err error) {
	drained := false
	defer func() {
		if !drained {
			go func() {
				p.drain(reason, err)
				p.signal()
			}()
		}
	}()
	for {
		job, _, ok := p.q.pop()
		if ok {
			p.drop(job, reason, err, false)
			continue
		}
		if p.queueFinal() {
			drained = true
			return
		}
		// A push that claimed its place before intake closed is still
		// writing its job, or an eviction is replacing one; either is
		// about to be done.
		yield()
	}
}

// finished reports whether no worker goroutine is left and every accepted
// job has been accounted for.
func (p *Pool[T]) finished() bool {
	p.mu.Lock()
	closed := p.state == stateClosed
	p.mu.Unlock()
	// queueFinal too: an eviction under way or a retry still being dropped
	// may add to accepted or still show in Stats after accounted holds.
	return closed && p.live.Load() == 0 && p.queueFinal() && p.accounted()
}

// accounted reports whether every accepted job has started or been dropped.
func (p *Pool[T]) accounted() bool {
	var started uint64
	for _, w := range *p.crew.Load() {
		st, _, _, _ := w.snapshot()
		started += st
	}
	return started+p.dropped.Load() == p.q.accepted()
}

// release frees what the pool holds once it has stopped.
func (p *Pool[T]) release() {
	p.stopClock()
	p.stopBaseWatch()
	p.cancelRun()
}

// event returns a channel closed at the next progress event: a drop after
// intake closed, a job started after a hard stop, or a worker exiting. Take it
// before checking the condition you wait for.
func (p *Pool[T]) event() <-chan struct{} {
	p.evMu.Lock()
	defer p.evMu.Unlock()
	p.evTaken = true
	return p.evCh
}

// signal wakes everyone waiting in event. It costs a lock when nobody waits.
func (p *Pool[T]) signal() {
	p.evMu.Lock()
	if p.evTaken {
		close(p.evCh)
		p.evCh = make(chan struct{})
		p.evTaken = false
	}
	p.evMu.Unlock()
}
