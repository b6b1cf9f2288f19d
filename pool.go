package workpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// Handler runs one job. ctx is derived from the pool's base context and
// carries the per-job deadline ([WithJobTimeout]); it is cancelled when the
// pool stops hard (the base context ends or a shutdown deadline passes). A
// non-nil error counts the job as failed and is handed to the OnError hook.
//
// With the job timeout on, a handler that calls ctx.Done gets a context that
// is cancelled when it returns, as with context.WithTimeout. To stay free of
// allocations, a handler that never calls ctx.Done may share its context with
// the jobs its worker runs next within 1/64 of the timeout: a goroutine that
// keeps such a context past the job sees it end at its deadline, when it
// first calls Done (at the end of the job then running), or when the worker
// exits, rather than the moment the handler returns.
type Handler[T any] func(ctx context.Context, job T) error

// Pool runs a [Handler] on jobs of type T with a fixed number of workers fed
// by a bounded queue. Create one with [New]; the zero Pool is not usable, and
// a Pool must not be copied. All methods are safe for concurrent use.
//
// Workers start with [Pool.Start]; jobs submitted before that wait in the
// queue. [Pool.Shutdown] closes intake at once and drains: queued jobs still
// run. Every accepted job ends exactly once, either by its handler finishing
// or by being handed to the OnDrop hook with the reason; none is lost.
//
// Submit and the worker loop allocate nothing per job and hold no lock; the
// queue is a lock-free ring of T (see the benchmarks for per-job costs).
type Pool[T any] struct {
	// Set by New and never changed: read without synchronisation.
	handler         Handler[T]
	q               *ring[T]
	workers         []worker
	timeout         time.Duration // per-job timeout; 0 disables
	bucket          time.Duration // see jobContext
	shutdownTimeout time.Duration
	policy          DropPolicy
	onDrop          func(T, error) // nil when unset
	onError         func(T, error) // nil when unset
	log             *slog.Logger   // nil: no logging
	metrics         Metrics
	timed           bool            // metrics wants durations, so read the clock
	epoch           time.Time       // origin of queue stamps
	base            context.Context // from WithContext
	baseDone        <-chan struct{} // base.Done(); nil if it never ends
	runCtx          context.Context
	cancelRun       context.CancelFunc
	stopBaseWatch   func() bool
	wake            chan struct{} // one token per claimed sleeper; cap len(workers)
	space           chan struct{} // cap 1: room was freed while SubmitWait callers wait
	closing         chan struct{} // closed when intake closes

	// Written on the hot path by many goroutines: each on its own cache line.
	_        cacheLinePad
	sleepers atomic.Int64 // workers announced as parked and not yet claimed by a waker
	_        cacheLinePad
	waiters  atomic.Int64 // SubmitWait callers announced as waiting for room
	_        cacheLinePad
	evicting atomic.Int64 // DropOldest evictions in progress (see evictAndPush)

	// Slow-path counters and flags.
	rejected atomic.Uint64 // refused submissions
	dropped  atomic.Uint64 // accepted jobs handed to OnDrop, counted after OnDrop returns
	running  atomic.Bool   // mirrors state == stateRunning for IsRunning
	live     atomic.Int64  // worker goroutines that have not exited
	// aborted is set once the pool stops hard; abortErr and abortReason are
	// written before it is set and never after, so readers that see it true
	// may read them.
	aborted     atomic.Bool
	abortErr    error
	abortReason DropReason
	abortOnce   sync.Once

	mu         sync.Mutex
	state      lifecycle // guarded by mu
	shutdownAt time.Time // guarded by mu; when Shutdown was first called: its timeout counts from there

	evMu    sync.Mutex
	evCh    chan struct{} // guarded by evMu; closed and replaced at each progress event
	evTaken bool          // guarded by evMu; someone holds evCh, so signal must close it
}

type lifecycle uint8

const (
	stateNew     lifecycle = iota // created, workers not started
	stateRunning                  // workers started, intake open
	stateClosed                   // intake closed: draining or stopped
)

// New returns a pool that runs handler on each job, configured by opts (see
// [WithWorkers] and the other options for defaults). It validates every
// setting and returns an error naming each bad one; no goroutine starts
// until [Pool.Start].
func New[T any](handler Handler[T], opts ...Option) (*Pool[T], error) {
	s := defaultSettings()
	for _, opt := range opts {
		if opt != nil {
			opt(&s)
		}
	}
	onDrop, onError, err := validate[T](handler, &s)
	if err != nil {
		return nil, err
	}
	_, nop := s.metrics.(NopMetrics)
	p := &Pool[T]{
		handler:         handler,
		q:               newRing[T](s.queueSize, !nop),
		workers:         make([]worker, s.workers),
		timeout:         s.jobTimeout,
		bucket:          bucketWidth(s.jobTimeout),
		shutdownTimeout: s.shutdownTimeout,
		policy:          s.policy,
		onDrop:          onDrop,
		onError:         onError,
		log:             s.logger,
		metrics:         s.metrics,
		timed:           !nop,
		epoch:           time.Now(),
		wake:            make(chan struct{}, s.workers),
		space:           make(chan struct{}, 1),
		closing:         make(chan struct{}),
		evCh:            make(chan struct{}),
	}
	if b, ok := s.metrics.(StatsBinder); ok {
		if err := b.Bind(p.Stats); err != nil {
			return nil, err
		}
	}
	p.base, p.baseDone = s.ctx, s.ctx.Done()
	p.runCtx, p.cancelRun = context.WithCancel(s.ctx)
	p.stopBaseWatch = context.AfterFunc(s.ctx, p.abortByBase)
	return p, nil
}

func validate[T any](handler Handler[T], s *settings) (onDrop, onError func(T, error), err error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("workpool: "+format, args...))
	}
	if handler == nil {
		bad("handler is nil")
	}
	if s.workers <= 0 || s.workers > MaxWorkers {
		bad("workers must be positive and at most %d, got %d", MaxWorkers, s.workers)
	}
	if s.queueSize <= 0 || s.queueSize > MaxQueueSize {
		bad("queue size must be positive and at most %d, got %d", MaxQueueSize, s.queueSize)
	}
	if s.jobTimeout < 0 {
		bad("job timeout must not be negative, got %v", s.jobTimeout)
	}
	if s.shutdownTimeout <= 0 {
		bad("shutdown timeout must be positive, got %v", s.shutdownTimeout)
	}
	if s.ctx == nil {
		bad("context is nil")
	}
	if s.policy != DropNewest && s.policy != DropOldest {
		bad("unknown drop policy %v", s.policy)
	}
	if s.metrics == nil {
		bad("metrics is nil")
	}
	if s.configErr != nil {
		errs = append(errs, s.configErr)
	}
	onDrop, errDrop := hook[T]("OnDrop", s.onDrop)
	onError, errErr := hook[T]("OnError", s.onError)
	errs = append(errs, errDrop, errErr)
	return onDrop, onError, errors.Join(errs...)
}

// hook checks that an OnDrop or OnError function takes the pool's job type.
func hook[T any](name string, fn any) (func(T, error), error) {
	switch fn := fn.(type) {
	case nil:
		return nil, nil
	case nilHook:
		return nil, fmt.Errorf("workpool: %s function is nil", name)
	case func(T, error):
		return fn, nil
	default:
		return nil, fmt.Errorf("workpool: %s function has type %T, want func(%v, error) for this pool's jobs",
			name, fn, reflect.TypeFor[T]())
	}
}

// Start launches the workers. It is idempotent, and does nothing once
// shutdown has begun. Jobs submitted before Start run once it is called.
func (p *Pool[T]) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != stateNew {
		return
	}
	p.state = stateRunning
	p.running.Store(true)
	p.live.Store(int64(len(p.workers)))
	for i := range p.workers {
		go p.work(&p.workers[i])
	}
	p.logInfo("workpool started", "workers", len(p.workers), "queue_size", p.q.size)
}

// Submit enqueues job without blocking. It returns nil when the job was
// accepted: it will run, or be handed to OnDrop. When the queue is full it
// returns [ErrQueueFull] under [DropNewest]; under [DropOldest] it accepts
// job and evicts the oldest queued job to OnDrop. Once shutdown has begun it
// returns [ErrClosed]. It may be called before [Pool.Start].
func (p *Pool[T]) Submit(job T) error {
	var stamp int64
	if p.timed {
		stamp = p.clock()
	}
	for {
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

// queueFinal reports whether the queue is closed, empty and has no eviction
// in progress, so no job can appear in it any more.
func (p *Pool[T]) queueFinal() bool {
	return p.q.closed() && p.evicting.Load() == 0 && !p.q.pending()
}

// SubmitWait enqueues job, blocking while the queue is full. It returns nil
// once the job is accepted, ctx.Err() if ctx ends first, and [ErrClosed] if
// shutdown begins first (waiting callers are released at once). It never
// evicts a queued job, whatever the drop policy. If there is room, it
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
			yield()
			continue
		}
		if err := p.waitForRoom(ctx, job, stamp); err != errRetry {
			return err
		}
		waited = true
	}
}

var errRetry = errors.New("retry")

// waitForRoom parks a SubmitWait caller until a worker frees a slot. It
// returns nil once it pushed job itself, errRetry to make the caller try
// again, or the reason to give up.
func (p *Pool[T]) waitForRoom(ctx context.Context, job T, stamp int64) error {
	// Announce before the last try: a worker that frees room after our try
	// then sees waiters > 0 and sends a token (both sides use sequentially
	// consistent atomics, so one of them sees the other).
	p.waiters.Add(1)
	switch p.q.push(job, stamp) {
	case pushed:
		p.waiters.Add(-1)
		p.accepted()
		p.passRoom()
		return nil
	case pushClosed:
		p.waiters.Add(-1)
		return p.reject(ReasonClosed, ErrClosed)
	}
	select {
	case <-p.space:
		p.waiters.Add(-1)
		return errRetry
	case <-ctx.Done():
		p.waiters.Add(-1)
		p.passRoom() // a token we did not take may be meant for another waiter
		return p.reject(ReasonCanceled, ctx.Err())
	case <-p.closing:
		p.waiters.Add(-1)
		return p.reject(ReasonClosed, ErrClosed)
	}
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
		p.wake <- struct{}{} // never blocks: at most one token per sleeper
	}
}

func (p *Pool[T]) reject(reason DropReason, err error) error {
	p.rejected.Add(1)
	p.metrics.JobRejected(reason)
	return err
}

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
// stop's error, unless its own deadline passes first; once the shutdown
// timeout has passed, every call returns context.DeadlineExceeded at once. On
// a pool that was never started it hands queued jobs to OnDrop with
// ErrClosed and returns nil.
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
		case <-ev:
		case <-ctx.Done():
			return p.stopHard(ctx.Err())
		case <-timer.C:
			return p.stopHard(context.DeadlineExceeded)
		}
	}
	p.release()
	if p.aborted.Load() {
		return p.abortErr
	}
	p.logInfo("workpool stopped")
	return nil
}

// stopHard stops the pool at a passed shutdown deadline and waits only for
// the drops.
func (p *Pool[T]) stopHard(err error) error {
	p.abort(err, ReasonShutdown)
	p.stopBaseWatch()
	for {
		ev := p.event()
		if p.accounted() {
			return err
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
	p.state = stateClosed
	p.running.Store(false)
	p.q.close()
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
		p.aborted.Store(true)
		p.closeIntake()
		p.cancelRun()
		p.logWarn("workpool stopping hard", "reason", reason.String(), "err", err)
	})
}

// abortByBase stops the pool hard because its base context ended.
func (p *Pool[T]) abortByBase() { p.abort(p.base.Err(), ReasonCanceled) }

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
	return closed && p.live.Load() == 0 && p.accounted()
}

// accounted reports whether every accepted job has started or been dropped.
func (p *Pool[T]) accounted() bool {
	var started uint64
	for i := range p.workers {
		st, _, _, _ := p.workers[i].snapshot()
		started += st
	}
	return started+p.dropped.Load() == p.q.accepted()
}

// release frees what the pool holds once it has stopped.
func (p *Pool[T]) release() {
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

// QueueDepth returns the number of accepted jobs waiting for a worker. It
// equals Stats().Queued.
func (p *Pool[T]) QueueDepth() int { return p.q.len() }

// IsRunning reports whether the pool is between Start and the beginning of
// shutdown.
func (p *Pool[T]) IsRunning() bool { return p.running.Load() }

// clock returns nanoseconds since the pool was created, on the monotonic clock.
func (p *Pool[T]) clock() int64 { return int64(time.Since(p.epoch)) }

func (p *Pool[T]) logInfo(msg string, args ...any) {
	if p.log != nil {
		p.log.Info(msg, args...)
	}
}

func (p *Pool[T]) logWarn(msg string, args ...any) {
	if p.log != nil {
		p.log.Warn(msg, args...)
	}
}
