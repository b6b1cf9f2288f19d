package workpool_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// fuzzCtxs checks the job context contract in a FuzzPool run with the
// contexts flag. Each handler keeps its context; even-numbered jobs watch
// it (Done, a WithCancel and a WithTimeout child, an AfterFunc), odd ones
// only keep it. A goroutine per job waits for the kept context to end, and
// later handlers check the earlier jobs' contexts as they start.
type fuzzCtxs struct {
	wg sync.WaitGroup // the goroutines that wait for kept contexts

	mu    sync.Mutex
	kept  []*keptCtx                // guarded by mu
	owner map[context.Context]int32 // guarded by mu: which job had each context
}

// keptCtx is one job's context, kept past its job.
type keptCtx struct {
	id          int32
	ctx         context.Context
	deadline    time.Time
	hasDeadline bool
	done        <-chan struct{}   // taken by the handler if it watched; else nil
	children    []context.Context // derived by a watching handler, never cancelled
	afterRan    chan struct{}     // closed by the watching handler's AfterFunc
	seen        error             // the first non-nil Err read; guarded by fuzzCtxs.mu
	returnedAt  atomic.Int64      // when the handler returned (UnixNano); 0 before
}

// recheck is how many earlier contexts a starting handler checks.
const recheck = 8

// enter records and checks a starting job's context. The handler calls the
// returned keptCtx's leave as it returns.
func (f *fuzzCtxs) enter(r *fuzzRun, ctx context.Context, j fuzzJob) *keptCtx {
	k := &keptCtx{id: j.id, ctx: ctx}
	k.deadline, k.hasDeadline = ctx.Deadline()
	now := time.Now()
	if r.cfg.jobTimeout {
		timeout := r.times.jobTimeout
		left := k.deadline.Sub(now)
		switch {
		case !k.hasDeadline:
			r.failf("job %d: context without a deadline", j.id)
		case left > timeout+timeout/64:
			r.failf("job %d: deadline %v after its start; want at most %v", j.id, left, timeout+timeout/64)
		case !r.cfg.realTime && left < timeout:
			r.failf("job %d: deadline %v after its start; want at least %v", j.id, left, timeout)
		}
	}
	// On the real clock a busy machine may hold the worker up past a
	// 2ms deadline before the handler runs; in the bubble it is exact.
	if err := ctx.Err(); err != nil && !r.closing.Load() && !r.cfg.realTime {
		r.failf("job %d starts with its context ended (%v) before any Shutdown or cancel", j.id, err)
	}
	if j.id%2 == 0 {
		k.done = ctx.Done()
		c1, cancel1 := context.WithCancel(ctx)
		c2, cancel2 := context.WithTimeout(ctx, 1000*time.Hour)
		_, _ = cancel1, cancel2 // never called: the job's end must end them
		k.children = []context.Context{c1, c2}
		k.afterRan = make(chan struct{})
		context.AfterFunc(ctx, func() { close(k.afterRan) })
	}

	f.mu.Lock()
	if f.owner == nil {
		f.owner = make(map[context.Context]int32)
	}
	if prev, ok := f.owner[ctx]; ok && r.cfg.jobTimeout {
		r.failf("job %d got the context of job %d", j.id, prev)
	}
	f.owner[ctx] = j.id
	earlier := f.kept[max(0, len(f.kept)-recheck):]
	earlier = append([]*keptCtx(nil), earlier...)
	f.kept = append(f.kept, k)
	f.mu.Unlock()

	for _, e := range earlier {
		f.check(r, e, "a later job's start")
	}
	f.wg.Go(func() { f.await(r, k) })
	return k
}

func (k *keptCtx) leave() { k.returnedAt.Store(time.Now().UnixNano()) }

// check reads a kept context and checks what must hold at any time.
func (f *fuzzCtxs) check(r *fuzzRun, k *keptCtx, when string) error {
	// Read under mu, so that the reads of one context are ordered as they
	// are recorded.
	f.mu.Lock()
	err := k.ctx.Err()
	first := k.seen
	if first == nil {
		k.seen = err
	}
	f.mu.Unlock()
	switch {
	case first != nil && err != first:
		r.failf("job %d's context, at %s: Err went from %v to %v", k.id, when, first, err)
	case err != nil && err != context.Canceled && err != context.DeadlineExceeded:
		r.failf("job %d's context, at %s: Err = %v", k.id, when, err)
	}
	if d, ok := k.ctx.Deadline(); !d.Equal(k.deadline) || ok != k.hasDeadline {
		r.failf("job %d's context, at %s: Deadline went from %v, %v to %v, %v", k.id, when, k.deadline, k.hasDeadline, d, ok)
	}
	if k.done != nil && k.ctx.Done() != k.done {
		r.failf("job %d's context, at %s: Done returned another channel", k.id, when)
	}
	if err == nil {
		return nil
	}
	select {
	case <-k.ctx.Done():
	default:
		r.failf("job %d's context, at %s: Err = %v but Done is open", k.id, when, err)
	}
	if c := context.Cause(k.ctx); c != err && !(err == context.Canceled && c == errBaseCause && r.closing.Load()) {
		r.failf("job %d's context, at %s: Err = %v but Cause = %v", k.id, when, err, c)
	}
	return err
}

// await waits, as a goroutine a handler leaked its context into would, for
// the kept context to end, and checks it then.
func (f *fuzzCtxs) await(r *fuzzRun, k *keptCtx) {
	bound := 2 * time.Hour // virtual: past every wait of the run
	if r.cfg.realTime {
		bound = 5 * time.Second
	}
	deadline := time.Now().Add(bound)
	if k.done != nil {
		select {
		case <-k.done:
		case <-time.After(bound):
		}
	} else {
		// Polled with a growing pause: a context that ends only at a hard
		// stop may take a minute of virtual time, and polling that at the
		// first pause cost ten seconds of real time (a fuzz input hung
		// the fuzzer: testdata/fuzz/FuzzPool/107112b4d4d6aae6).
		pause := r.times.pause
		for k.ctx.Err() == nil && time.Now().Before(deadline) {
			time.Sleep(pause)
			pause = min(2*pause, 10*time.Millisecond)
		}
	}
	if f.check(r, k, "its end") == nil {
		r.failf("job %d's context has not ended %v after its job started", k.id, bound)
	}
}

// finish checks every kept context once the pool has stopped and every
// handler has returned: each has ended, and so have its children.
func (f *fuzzCtxs) finish(r *fuzzRun) {
	f.wg.Wait()
	f.mu.Lock()
	kept := f.kept
	f.mu.Unlock()
	for _, k := range kept {
		err := f.check(r, k, "the end of the run")
		if err == nil {
			r.failf("job %d's context is live after the pool stopped", k.id)
			continue
		}
		// A job context ends as its handler returns: one that returned
		// before its deadline ended Canceled (so did a hard stop or the
		// base's cancel before it). Exact on the virtual clock only.
		if ret := k.returnedAt.Load(); r.cfg.jobTimeout && !r.cfg.realTime && ret != 0 &&
			ret < k.deadline.UnixNano() && err != context.Canceled {
			r.failf("job %d returned %v before its deadline, but its context ended %v",
				k.id, k.deadline.Sub(time.Unix(0, ret)), err)
		}
		for i, c := range k.children {
			select {
			case <-c.Done():
			default:
				r.failf("job %d's child %d is live after its parent ended", k.id, i)
				continue
			}
			if c.Err() != err || context.Cause(c) != context.Cause(k.ctx) {
				r.failf("job %d's child %d ended with %v (cause %v); its parent with %v (cause %v)",
					k.id, i, c.Err(), context.Cause(c), err, context.Cause(k.ctx))
			}
		}
		if k.afterRan != nil {
			select {
			case <-k.afterRan:
			case <-time.After(5 * time.Second):
				r.failf("job %d's AfterFunc did not run after its context ended", k.id)
			}
		}
	}
}
