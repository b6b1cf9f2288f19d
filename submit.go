package workpool

import (
	"context"
)

// Submit enqueues job without blocking. It returns nil when the job was
// accepted: it will run, or be handed to OnDrop. When the queue is full it
// returns [ErrQueueFull] under [DropNewest]; under [DropOldest] it accepts
// job and evicts the oldest queued job to OnDrop. Once shutdown has begun,
// or the pool's base context has ended ([WithContext]), it returns
// [ErrClosed]. It may be called before [Pool.Start].
func (p *Pool[T]) Submit(job T) error {
	if p.baseEnded() {
		return p.reject(ReasonClosed, ErrClosed)
	}
	var stamp int64
	if p.timed {
		stamp = p.clock()
	}
	switch p.q.push(job, stamp) {
	case pushed:
		p.accepted()
		return nil
	case pushClosed:
		return p.reject(ReasonClosed, ErrClosed)
	}
	if p.policy != DropOldest {
		return p.reject(ReasonQueueFull, ErrQueueFull)
	}
	return p.evictAndPush(job, stamp)
}

// evictAndPush accepts job in place of the oldest queued job. Each round's
// pop and push are one step with respect to Shutdown: a round that began
// before intake closed still pushes its job (which then runs, or is dropped
// like any queued job), because workers and drains wait for rounds in
// progress before they call the queue empty. Otherwise a queued job could be
// evicted for a job then refused (TestEvictionRacingShutdown). OnDrop runs
// after the round, so a slow hook holds up no one. Only when other
// submitters take the freed room first does a later round start after
// intake closed; then the new job is refused, and the job evicted earlier
// has gone to OnDrop as usual.
func (p *Pool[T]) evictAndPush(job T, stamp int64) error {
	for {
		p.evicting.Add(1)
		// Announced, then checked: a worker or drain that saw no round in
		// progress looked after intake closed, so we see it closed here.
		if p.q.closed() {
			p.evicting.Add(-1)
			return p.reject(ReasonClosed, ErrClosed)
		}
		old, _, evicted := p.q.pop()
		res := p.q.pushAt(job, stamp, true)
		p.evicting.Add(-1)
		if res == pushed {
			p.accepted() // before OnDrop, which may end this goroutine
		}
		if evicted {
			// Intake may have closed meanwhile: then Shutdown waits for this
			// drop, so wake it (TestShutdownWaitsForEvictionDrop).
			p.drop(old, ReasonEvicted, ErrQueueFull, true)
		}
		if res == pushed {
			return nil
		}
	}
}

// baseEnded reports whether the base context has ended: a caller that saw
// it end must not have a job accepted, even before the base context's
// watcher has stopped the pool. It costs one atomic load while the base
// context is live, and nothing when it can never end. It leaves the stop to
// the watcher: Submit may be called from an OnDrop hook that the stop runs
// (TestSubmitFromOnDropDuringBaseStop).
func (p *Pool[T]) baseEnded() bool {
	if p.baseDone == nil {
		return false
	}
	select {
	case <-p.baseDone:
		return true
	default:
		return false
	}
}

// queueFinal reports whether the queue is closed, empty and has no eviction
// in progress, and no job waits for a retry, so no job can appear any more.
func (p *Pool[T]) queueFinal() bool {
	return p.q.closed() && p.evicting.Load() == 0 && !p.q.pending() && !p.retryWaiting()
}

// SubmitWait enqueues job, blocking while the queue is full. It returns nil
// once the job is accepted, ctx.Err() if ctx ends first, and [ErrClosed] if
// shutdown begins first (waiting callers are released at once). It never
// evicts a queued job, whatever the drop policy. Like Submit, it returns
// [ErrClosed] once the pool's base context has ended. If there is room, it
// succeeds even when ctx has already ended.
func (p *Pool[T]) SubmitWait(ctx context.Context, job T) error {
	if ctx == nil {
		return ErrNilContext
	}
	var stamp int64
	if p.timed {
		stamp = p.clock()
	}
	waited := false // woken by a room token, which may stand for several freed slots
	for spin := 0; ; spin++ {
		// Before every try, not only the first: a caller that waited while
		// the base context ended must be refused, as a new call would be,
		// rather than accepted before the watcher closes intake.
		if p.baseEnded() {
			return p.reject(ReasonClosed, ErrClosed)
		}
		switch p.q.push(job, stamp) {
		case pushed:
			p.accepted()
			if waited {
				// The token that woke us may stand for more than one freed
				// slot: pass it on (TestSubmitWaitMergedToken).
				p.passRoom()
			}
			return nil
		case pushClosed:
			return p.reject(ReasonClosed, ErrClosed)
		}
		if spin < spinRounds {
			// Workers free room all the time under load: yielding to them
			// costs less than parking here and being woken.
			p.counts.submitYielded()
			yield()
			continue
		}
		if done, err := p.waitForRoom(ctx, job, stamp); done {
			return err
		}
		waited = true
	}
}

// waitForRoom parks a SubmitWait caller until a worker frees a slot. It
// returns done and the result once the job is accepted or refused, and
// done == false to make the caller try again.
func (p *Pool[T]) waitForRoom(ctx context.Context, job T, stamp int64) (done bool, err error) {
	// Announce before the last try: a worker that frees room after our try
	// then sees waiters > 0 and sends a token (both sides use sequentially
	// consistent atomics, so one of them sees the other).
	p.waiters.Add(1)
	res := p.q.push(job, stamp)
	var ctxErr error
	if res == pushFull {
		p.counts.submitParked()
		select {
		case <-p.space: // a worker freed room: try again
		case <-ctx.Done():
			ctxErr = ctx.Err()
		case <-p.closing:
			res = pushClosed
		case <-p.baseDone: // nil, never ready, when the base never ends
			res = pushClosed
		}
	}
	p.waiters.Add(-1) // before passRoom, which must not count us
	switch {
	case res == pushed:
		p.accepted()
		p.passRoom()
		return true, nil
	case res == pushClosed:
		return true, p.reject(ReasonClosed, ErrClosed)
	case ctxErr != nil:
		p.passRoom() // a token we did not take may be meant for another waiter
		return true, p.reject(ReasonCanceled, ctxErr)
	}
	return false, nil
}

// passRoom hands a room token on to another waiter if there is room left.
func (p *Pool[T]) passRoom() {
	if p.waiters.Load() > 0 && p.q.len() < int(p.q.size) {
		p.signalRoom()
	}
}

// signalRoom tells one SubmitWait caller that room may be free.
func (p *Pool[T]) signalRoom() {
	select {
	case p.space <- struct{}{}:
	default: // a token is already pending; its receiver passes it on
	}
}

// accepted records an accepted job and wakes a parked worker if there is one.
func (p *Pool[T]) accepted() {
	p.metrics.JobSubmitted()
	// The push above is ordered before this load, and a parking worker's
	// announcement before its last look at the queue: either it sees the job
	// or we see it.
	if p.sleepers.Load() > 0 && p.claimSleeper() {
		p.counts.wokeWorker()
		p.wake <- struct{}{} // never blocks: at most one token per sleeper
	}
}

func (p *Pool[T]) reject(reason DropReason, err error) error {
	p.rejected.Add(1)
	p.metrics.JobRejected(reason)
	return err
}
