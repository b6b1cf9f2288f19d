package workpool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// jobContext is the context handed to handlers when the per-job timeout is
// on. context.WithTimeout costs a timer, a channel and four allocations per
// job, even for handlers that never look at their context; jobContext
// creates its timer and Done channel only when Done is called.
//
// To avoid even the one allocation per job, a worker hands the same
// jobContext to consecutive jobs that start within one "bucket" of time
// (timeout/64, at most 1ms): its deadline is the bucket's start plus the
// timeout plus the bucket's width, so each job gets at least its full timeout
// and at most one bucket more. A jobContext is never reset or reused for a
// later deadline: its state only moves from live to done, so a context a job
// leaked into a goroutine can never come back to life for another job. It is
// cancelled (context.Canceled) when the worker moves to the next bucket, goes
// idle after its Done channel was taken, or exits.
type jobContext struct {
	parent   context.Context // the pool's run context; never changes
	deadline time.Time       // never changes

	done atomic.Value // chan struct{}, created lazily by Done

	mu    sync.Mutex
	err   error       // guarded by mu; set once
	timer *time.Timer // guarded by mu; non-nil once Done armed it
	stop  func() bool // guarded by mu; unregisters from parent
}

var _ context.Context = (*jobContext)(nil)

func newJobContext(parent context.Context, deadline time.Time) *jobContext {
	return &jobContext{parent: parent, deadline: deadline}
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

// Done returns a channel closed when the context ends. The first call arms a
// timer for the deadline and a callback on the parent's cancellation.
func (c *jobContext) Done() <-chan struct{} {
	if d := c.done.Load(); d != nil {
		return d.(chan struct{})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.done.Load(); d != nil {
		return d.(chan struct{})
	}
	// Poll before publishing d: once it is stored, endLocked closes it, and
	// closing it here too would panic (TestJobContextDoneAfterEnd).
	if c.err == nil {
		c.pollLocked()
	}
	d := make(chan struct{})
	c.done.Store(d)
	if c.err != nil {
		close(d)
		return d
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	return d
}

// Err returns nil while the context is live, context.DeadlineExceeded after
// its deadline, and context.Canceled after the pool stopped it or the job's
// bucket was retired.
func (c *jobContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.pollLocked()
	}
	return c.err
}

// String names the context for debugging.
func (c *jobContext) String() string { return "workpool.jobContext" }

// pollLocked ends the context if its parent ended or its deadline passed; it
// makes Err right even when Done was never called and no timer runs.
func (c *jobContext) pollLocked() {
	if err := c.parent.Err(); err != nil {
		c.endLocked(err)
	} else if !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
}

// cancel ends the context with err unless it already ended.
func (c *jobContext) cancel(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.endLocked(err)
	}
	c.mu.Unlock()
}

func (c *jobContext) endLocked(err error) {
	c.err = err
	if d := c.done.Load(); d != nil {
		close(d.(chan struct{}))
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
}

// armed reports whether Done was called, so a timer may be holding resources.
func (c *jobContext) armed() bool { return c.done.Load() != nil }

// bucketWidth is how long a worker reuses one jobContext for jobs that start
// one after the other: 1/64 of the timeout, at most 1ms.
func bucketWidth(timeout time.Duration) time.Duration {
	return min(timeout/64, time.Millisecond)
}
