package workpool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Job contexts with the per-job timeout on.
//
// context.WithTimeout costs a timer, a channel and four allocations per job,
// even for handlers that never look at their context. Here the cost is paid
// only by handlers that call Done, and then it is one channel.
//
// A worker hands the same jobContext to the consecutive jobs that start
// within one "bucket" of time (timeout/64): its deadline is the bucket's
// start plus the timeout plus the bucket's width, so each job gets at least
// its full timeout and at most 1/64 more. A jobContext is never reset: it is
// retired (Done closed, Err Canceled) when its bucket ends or the worker
// exits, and never comes back to life.
//
// What a context's Done and Err report for the job running now lives in the
// worker's jobOwner: the Done channel, made at the first call, closed when
// the job's deadline passes (one timer per worker, reset per job), when the
// pool stops hard, or when the job returns, as context.WithTimeout's cancel
// would. A goroutine a job leaked its context into therefore sees a Done
// channel it took during the job closed at the job's end; asked after the
// job ended, the shared context reports itself ended while the worker is
// idle, and answers for the job running then otherwise, until the bucket
// ends.

// jobContext is the context.Context handed to handlers.
type jobContext struct {
	own        *jobOwner       // the worker's per-job state; never changes
	parent     context.Context // the pool's run context; never changes
	deadline   time.Time       // never changes
	deadlineNS int64           // deadline on the pool's clock (ns since its epoch)
	retired    atomic.Bool     // the bucket ended: Done is closed, Err is Canceled
}

var _ context.Context = (*jobContext)(nil)

// jobOwner is one worker's state for the job it runs now.
type jobOwner struct {
	aborted *atomic.Bool   // the pool's hard-stop flag
	state   *atomic.Uint64 // the worker's state: odd while a job runs (see worker)
	// used is set when done or err is, so the worker knows to reset them
	// at the end of the job without taking mu otherwise.
	used atomic.Bool

	mu    sync.Mutex
	done  chan struct{} // guarded by mu; the running job's Done channel, made by the first Done
	err   error         // guarded by mu; why the running job's context ended
	dl    time.Time     // guarded by mu; the deadline the timer is set for
	timer *time.Timer   // guarded by mu; made at the first Done, reused after
}

// closedChan is the Done channel of retired contexts.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newJobContext(own *jobOwner, parent context.Context, epoch time.Time, deadlineNS int64) *jobContext {
	return &jobContext{own: own, parent: parent,
		deadline: epoch.Add(time.Duration(deadlineNS)), deadlineNS: deadlineNS}
}

// Deadline returns the job's deadline, or the parent's if that is earlier.
func (c *jobContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Value returns the parent's value for key.
func (c *jobContext) Value(key any) any { return c.parent.Value(key) }

// String names the context for debugging.
func (c *jobContext) String() string { return "workpool.jobContext" }

// Done returns a channel closed when the running job's context ends. The
// first call of a job makes the channel and sets the worker's timer.
func (c *jobContext) Done() <-chan struct{} {
	o := c.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.over() {
		return closedChan
	}
	if o.done == nil {
		if o.err == nil {
			o.pollLocked(c) // before done exists: endLocked would close it
		}
		o.done = make(chan struct{})
		o.used.Store(true)
		if o.err != nil {
			close(o.done)
		} else {
			o.armLocked(c.deadline)
		}
	}
	return o.done
}

// Err returns nil while the running job's context is live,
// context.DeadlineExceeded after its deadline, and context.Canceled after
// the pool stopped hard or the context was retired.
func (c *jobContext) Err() error {
	o := c.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.over() {
		return context.Canceled
	}
	if o.err == nil {
		o.pollLocked(c)
	}
	return o.err
}

// over reports whether c can belong to no running job: it was retired, or
// its worker is idle (a goroutine a job leaked c into is asking).
func (c *jobContext) over() bool {
	return c.retired.Load() || c.own.state.Load()&1 == 0
}

// pollLocked ends the running job's context if the pool stopped or the
// deadline passed: Err is right even when no timer runs.
func (o *jobOwner) pollLocked(c *jobContext) {
	switch {
	case o.aborted.Load():
		o.endLocked(context.Canceled)
	case c.parent.Err() != nil:
		o.endLocked(c.parent.Err())
	case !time.Now().Before(c.deadline):
		o.endLocked(context.DeadlineExceeded)
	}
}

// armLocked sets the worker's timer for deadline.
func (o *jobOwner) armLocked(deadline time.Time) {
	o.dl = deadline
	if o.timer == nil {
		o.timer = time.AfterFunc(time.Until(deadline), o.fire)
	} else {
		o.timer.Reset(time.Until(deadline))
	}
}

// fire runs when the timer expires: it ends the running job's context if
// its deadline has passed (a timer set for an earlier job may fire late).
func (o *jobOwner) fire() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil || o.done == nil {
		return
	}
	if wait := time.Until(o.dl); wait > 0 {
		o.timer.Reset(wait)
		return
	}
	o.endLocked(context.DeadlineExceeded)
}

// endLocked ends the running job's context with err. o.err must be nil.
func (o *jobOwner) endLocked(err error) {
	o.err = err
	o.used.Store(true)
	if o.done != nil {
		close(o.done)
	}
	if o.timer != nil {
		o.timer.Stop()
	}
}

// cancel ends the running job's context with err, if it is live. The pool
// calls it on every worker when it stops hard.
func (o *jobOwner) cancel(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.endLocked(err)
	}
	o.mu.Unlock()
}

// endJob closes the finished job's Done channel, if it was taken, and clears
// the state for the next job. It costs one atomic load when nothing was used.
func (o *jobOwner) endJob() {
	if !o.used.Load() {
		return
	}
	o.mu.Lock()
	if o.err == nil && o.done != nil {
		close(o.done) // the job returned: its context ends, as WithTimeout's cancel would
	}
	if o.timer != nil {
		o.timer.Stop()
	}
	o.done, o.err = nil, nil
	o.used.Store(false)
	o.mu.Unlock()
}

// retire ends c for good: its bucket is over or the worker exits.
func (c *jobContext) retire() {
	c.own.mu.Lock()
	c.retired.Store(true)
	c.own.mu.Unlock()
	c.own.endJob()
}

// bucketWidth is how long a worker hands one jobContext to jobs that start
// one after the other: 1/64 of the timeout.
func bucketWidth(timeout time.Duration) time.Duration {
	return timeout / 64
}
