package workpool

import (
	"context"
	"reflect"
	"runtime"
	"sync/atomic"
	"time"
)

// Job contexts with the per-job timeout on.
//
// Every job gets a context of its own that behaves as
// context.WithTimeout(base, timeout) with a deferred cancel around the
// handler would: Done is one channel, closed once and for good when the job
// returns, its deadline passes, the base context ends or the pool stops
// hard; Err is nil until then and the same error after; Cause agrees with
// Err, or is the base's cause when the base ended the job. A context is
// never reused, so a goroutine that keeps one after its job sees it ended
// for good.
//
// context.WithTimeout costs a timer, a channel and four allocations per
// job, and most handlers only pass their context along or ask Err. So a job
// context starts lazy:
//   - contexts are carved from a per-worker slab (up to ctxSlab of them, 4 KiB,
//     per allocation); a slab is freed by the garbage collector once no
//     context in it is referenced;
//   - until someone calls Done (which deriving a child, context.AfterFunc
//     and an http request all do), the context has no channel and no timer:
//     Err compares the clock with the deadline and looks at the pool's stop
//     and the base context when asked, and the job's end is one
//     compare-and-swap of the state word;
//   - the first Done makes the context "watched": it creates the real
//     thing, context.WithDeadline(run context, deadline), and from then on
//     answers Done, Err and Cause from it, and presents it to the context
//     package as its cancelable ancestor, so that children register with it
//     directly (no goroutine each) and are cancelled synchronously when the
//     job ends, the deadline passes, the base context ends or the pool
//     stops hard (the run context is a child of the base, cancelled by a
//     hard stop).

// ctxSlab is how many job contexts a busy worker allocates at a time;
// ctxSlabFirst how many its first slab holds.
const (
	ctxSlab      = 128
	ctxSlabFirst = 4
)

// deadlineSlack is how much later than its timeout after the job's start a
// job's deadline is: 1/64 of the timeout. A worker that goes straight from
// one job to the next takes the previous job's end as the next one's start,
// to save a clock read; the slack keeps the deadline at least the timeout
// after the real start, unless the worker is held up right there for longer.
func deadlineSlack(timeout time.Duration) time.Duration { return timeout / 64 }

// A job context's state word. It leaves 0 once, by compare-and-swap: to an
// end code if the context ends unwatched, or to stWatching, then
// stWatched, if it is watched first.
const (
	endCanceled uint32 = 1 // the handler returned, or the pool stopped hard: Canceled
	endDeadline uint32 = 2 // the job's deadline passed: DeadlineExceeded
	endBase     uint32 = 3 // the base context ended: its Err and its cause
	stWatching  uint32 = 4 // the first Done is creating the real context
	stWatched   uint32 = 5 // the real context answers for this one
)

// ctxHome is what all job contexts of a pool share.
type ctxHome struct {
	// Set by New and never changed.
	base     context.Context
	baseDone <-chan struct{} // base.Done(); nil if base never ends
	run      context.Context // the pool's run context: a child of base, cancelled by a hard stop
	epoch    time.Time       // origin of the pool's clock

	// stopAt is when the pool stopped hard, on the pool's clock; it is
	// written once, before stop is set. stop is then the end code of the
	// running jobs' unwatched contexts: endBase if the base context ended,
	// endCanceled if a shutdown deadline passed.
	stopAt int64
	stop   atomic.Uint32
}

func (h *ctxHome) now() int64 { return int64(time.Since(h.epoch)) }

// markStopped records a hard stop, once (the caller makes sure), before the
// run context is cancelled.
func (h *ctxHome) markStopped(code uint32) {
	h.stopAt = h.now()
	h.stop.Store(code)
}

// ctxSource is one worker's source of job contexts.
type ctxSource struct {
	home *ctxHome // never changes
	// Owned by the worker goroutine: the current slab and how many of its
	// contexts were handed out.
	slab []jobCtx
	used int
}

// next returns a fresh context for a job with deadline (pool clock). Slabs
// start small and double up to ctxSlab, so that the many workers of a
// mostly idle pool do not each hold 4 KiB.
func (o *ctxSource) next(deadline int64) *jobCtx {
	if o.used == len(o.slab) {
		o.slab, o.used = make([]jobCtx, min(max(2*len(o.slab), ctxSlabFirst), ctxSlab)), 0
	}
	c := &o.slab[o.used]
	o.used++
	c.home, c.dl = o.home, deadline
	return c
}

// jobCtx is the context.Context handed to handlers when the job timeout is
// on. See the top of this file. It is 32 bytes, so that a slab of them is
// cheap to allocate and to collect.
type jobCtx struct {
	home *ctxHome // set by next, before the handler runs; never changes after
	dl   int64    // the deadline on the pool's clock; as home

	// state is 0 while live and unwatched, an end code once ended
	// unwatched, or stWatching then stWatched (see above).
	state atomic.Uint32

	// real is the watched context: written once, by the goroutine that
	// moved state to stWatching, before it stores stWatched; read only
	// after a load of state saw stWatched.
	real *watchedCtx
}

// watchedCtx is a watched job context's real one.
type watchedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

var _ context.Context = (*jobCtx)(nil)

// closedChan is the Done channel of contexts that ended before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline returns the job's deadline, or the base context's if that is
// earlier (as context.WithDeadline does).
func (c *jobCtx) Deadline() (time.Time, bool) {
	h := c.home
	d := h.epoch.Add(time.Duration(c.dl))
	if bd, ok := h.base.Deadline(); ok && bd.Before(d) {
		return bd, true
	}
	return d, true
}

// Done returns a channel that is closed when the job's context ends. The
// first call while the job runs makes the context watched (see above).
func (c *jobCtx) Done() <-chan struct{} {
	switch s := c.state.Load(); s {
	case stWatched:
		return c.real.ctx.Done()
	case endCanceled, endDeadline, endBase:
		return closedChan
	}
	return c.watch()
}

// watch makes c watched, if it is live, and returns its Done channel.
func (c *jobCtx) watch() <-chan struct{} {
	for {
		switch c.poll() {
		case 0:
			if !c.state.CompareAndSwap(0, stWatching) {
				continue // ended or watched meanwhile: look again
			}
			h := c.home
			ctx, cancel := context.WithDeadline(h.run, h.epoch.Add(time.Duration(c.dl)))
			c.real = &watchedCtx{ctx: ctx, cancel: cancel}
			c.state.Store(stWatched)
			return ctx.Done()
		case stWatching, stWatched:
			return c.watched().ctx.Done()
		default:
			return closedChan
		}
	}
}

// watched returns the real context if c is watched, waiting for the
// goroutine that creates it if need be, and nil if c ended unwatched.
func (c *jobCtx) watched() *watchedCtx {
	for {
		switch c.state.Load() {
		case stWatched:
			return c.real
		case stWatching:
			runtime.Gosched() // context.WithDeadline is a moment away
		default:
			return nil
		}
	}
}

// Err returns nil while the job's context is live, then, for good,
// context.Canceled once the handler returned or the pool stopped hard,
// context.DeadlineExceeded once the job's deadline passed, or the base
// context's error if that ended first.
func (c *jobCtx) Err() error {
	s := c.state.Load()
	if s == 0 {
		if s = c.poll(); s == 0 {
			return nil
		}
	}
	switch s {
	case endCanceled:
		return context.Canceled
	case endDeadline:
		return context.DeadlineExceeded
	case endBase:
		return c.home.base.Err()
	}
	return c.watched().ctx.Err()
}

// Value returns the base context's value for key. Under the context
// package's own key for cancelable contexts (see cancelCtxKey) it returns
// the watched context's real one, so that children register with it and
// context.Cause reads its cause; an unwatched context that ended for a
// reason of its own hides its ancestors', so that Cause equals Err.
func (c *jobCtx) Value(key any) any {
	if key == cancelCtxKey {
		// poll first: context.Cause may ask Value before Err (it did before
		// Go 1.26), and must then see an end that Err would report.
		switch c.poll() {
		case stWatching, stWatched:
			return c.watched().ctx.Value(key)
		case endBase:
		default:
			return nil
		}
	}
	return c.home.base.Value(key)
}

// String names the context for debugging as context.WithDeadline's does:
// the base's name, then the deadline and the time left.
func (c *jobCtx) String() string {
	d, _ := c.Deadline()
	return contextName(c.home.base) + ".WithDeadline(" + d.String() + " [" + time.Until(d).String() + "])"
}

func contextName(c context.Context) string {
	if s, ok := c.(interface{ String() string }); ok {
		return s.String()
	}
	return reflect.TypeOf(c).String()
}

// AfterFunc arranges for f to run on a goroutine of its own once the job's
// context ends, as context.AfterFunc does; stop unregisters f and returns
// true if that kept f from running. The context package calls it only if it
// cannot use the watched context directly.
func (c *jobCtx) AfterFunc(f func()) (stop func() bool) {
	c.Done()
	if w := c.watched(); w != nil {
		return context.AfterFunc(w.ctx, f)
	}
	go f()
	return func() bool { return false }
}

// cause returns the end code that c should have for a reason other than
// its handler returning: a hard stop, the base context's end, or its
// deadline at now (pool clock; read only if needed, when now < 0). It
// returns 0 if none applies.
func (c *jobCtx) cause(now int64) uint32 {
	h := c.home
	if stop := h.stop.Load(); stop != 0 {
		if c.dl <= h.stopAt {
			return endDeadline // the deadline came first
		}
		return stop
	}
	if h.baseDone != nil {
		select {
		case <-h.baseDone:
			return endBase // the pool's watcher is about to stop it hard
		default:
		}
	}
	if now < 0 {
		now = h.now()
	}
	if c.dl <= now {
		return endDeadline
	}
	return 0
}

// poll ends an unwatched, live c if a hard stop, its base context or its
// deadline says it is over, and returns its state.
func (c *jobCtx) poll() uint32 {
	if s := c.state.Load(); s != 0 {
		return s
	}
	if code := c.cause(-1); code != 0 {
		c.state.CompareAndSwap(0, code)
	}
	return c.state.Load()
}

// finish ends c as its handler returns at now (pool clock), as the deferred
// cancel of context.WithTimeout would: unwatched, with one compare-and-swap
// (and the end it would have had if watched: deadline, hard stop, base).
func (c *jobCtx) finish(now int64) {
	code := endCanceled
	if h := c.home; now >= c.dl || h.stop.Load() != 0 || h.baseDone != nil {
		if code = c.cause(now); code == 0 {
			code = endCanceled
		}
	}
	if c.state.CompareAndSwap(0, code) {
		return // unwatched: nothing else to end
	}
	if w := c.watched(); w != nil {
		w.cancel()
	}
}

// cancelCtxKey is the key for which the context package's cancelable
// contexts return themselves from Value; context.Cause looks up the
// nearest one by it to read its cause. A job context that ended for a
// reason of its own must hide its ancestors' under that key, or Cause would
// report an ancestor's cause (as context.WithTimeout's context, itself a
// cancelable context, does). The key is unexported: it is learnt once, from
// the Value call that context.Cause makes on a probe context. The tests
// check that it was learnt (TestCancelCtxKeyLearnt).
var cancelCtxKey = func() any {
	var p keyProbe
	_ = context.Cause(&p)
	return p.key
}()

// keyProbe is an ended context that records the first key it is asked for.
type keyProbe struct{ key any }

func (*keyProbe) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*keyProbe) Done() <-chan struct{}       { return closedChan }
func (*keyProbe) Err() error                  { return context.Canceled }
func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}
