package workpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Handler runs one job. A non-nil error counts the job as failed and is
// handed to the OnError hook.
//
// With the job timeout on (the default, see [WithJobTimeout]), ctx is the
// job's own: it behaves as context.WithTimeout(base, timeout) with a
// deferred cancel around the handler, base being the pool's base context
// ([WithContext]). It ends, for good, when the handler returns
// (context.Canceled), when the job's deadline passes
// (context.DeadlineExceeded), when the base context ends (its error; and
// context.Cause gives the base's cause) or when the pool stops hard
// (context.Canceled). Its values are the base context's. Contexts derived
// from it (context.WithCancel, WithTimeout, AfterFunc, http requests) end
// with it and need no goroutine of their own to follow it. It is never
// reused for another job, so a goroutine that keeps it sees it ended.
//
// With the job timeout off, every job gets the pool's run context: derived
// from the base context, it ends when the pool stops hard or when Shutdown
// returns, not when the handler returns. Cancel what you derive from it.
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
	timeout         time.Duration // per-job timeout; 0 disables
	slack           time.Duration // added to the job timeout: see deadlineSlack
	shutdownTimeout time.Duration
	policy          DropPolicy
	onDrop          func(T, error) // nil when unset
	onError         func(T, error) // nil when unset
	log             *slog.Logger   // nil: no logging
	metrics         Metrics
	timed           bool            // metrics wants durations, so read the clock
	coarse          *coarseClock    // times job deadlines; nil: read the clock per job
	epoch           time.Time       // origin of queue stamps
	base            context.Context // from WithContext
	baseDone        <-chan struct{} // base.Done(); nil if it never ends
	home            *ctxHome        // what the job contexts share (see jobCtx)
	runCtx          context.Context // the jobs' context when the job timeout is off
	cancelRun       context.CancelFunc
	stopBaseWatch   func() bool
	wake            chan struct{} // one token per claimed sleeper; cap MaxWorkers (no storage: struct{})
	space           chan struct{} // cap 1: room was freed while SubmitWait callers wait
	closing         chan struct{} // closed when intake closes

	// crew is every worker the pool ever had, in order; the first size of
	// them should be running. Replaced (never changed in place) by Resize
	// under mu; read without a lock by Stats. size is written under mu and
	// read by workers after each job: a worker whose index is at or past it
	// retires (see retire).
	crew atomic.Pointer[[]*worker]
	size atomic.Int64
	// retry holds jobs waiting for a retry; nil without a retry policy. Set
	// by New.
	retry *retrier[T]
	// limiter is the rate limit, nil for none; replaced under limitMu by
	// SetRateLimit, which also closes and replaces limitCh.
	limiter atomic.Pointer[rate.Limiter]
	limitMu sync.Mutex
	limitCh chan struct{} // guarded by limitMu

	// Written on the hot path by many goroutines: each on its own cache line.
	_        cacheLinePad
	sleepers atomic.Int64 // workers announced as parked and not yet claimed by a waker
	_        cacheLinePad
	waiters  atomic.Int64 // SubmitWait callers announced as waiting for room
	_        cacheLinePad
	evicting atomic.Int64 // DropOldest evictions in progress (see evictAndPush)
	counts   poolCounts   // dispatch counters; empty unless built for them

	// Slow-path counters and flags.
	rejected atomic.Uint64 // refused submissions
	dropped  atomic.Uint64 // accepted jobs handed to OnDrop, counted after OnDrop returns
	// droppedBy counts the same by reason, for the log line of logDrops;
	// each is bumped before dropped.
	droppedBy   [numReasons]atomic.Uint64
	dropsLogged sync.Once
	running     atomic.Bool  // mirrors state == stateRunning for IsRunning
	live        atomic.Int64 // worker goroutines that have not exited
	// held counts workers that took a job and wait for a rate-limit token
	// before they start it: Stats counts those jobs as Active.
	held atomic.Int64
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
	// dropsAtClose is droppedBy when intake closed, so that logDrops counts
	// only the drops of the shutdown. Guarded by mu.
	dropsAtClose [numReasons]uint64

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
// setting and returns an error naming each bad one. No worker starts until
// [Pool.Start]. The pool watches its base context from New on (if that
// context ends first, the queued jobs are dropped on a short-lived
// goroutine); call [Pool.Shutdown] to release the watch.
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
		timeout:         s.jobTimeout,
		slack:           deadlineSlack(s.jobTimeout),
		shutdownTimeout: s.shutdownTimeout,
		policy:          s.policy,
		onDrop:          onDrop,
		onError:         onError,
		log:             s.logger,
		metrics:         s.metrics,
		timed:           !nop,
		coarse:          newCoarseClock(s.jobTimeout, !nop),
		epoch:           time.Now(),
		wake:            make(chan struct{}, MaxWorkers),
		space:           make(chan struct{}, 1),
		closing:         make(chan struct{}),
		evCh:            make(chan struct{}),
		limitCh:         make(chan struct{}),
	}
	if s.retry.MaxAttempts > 1 {
		p.retry = newRetrier[T](s.retry, s.metrics)
	}
	if s.rateSet && s.rateLimit != rate.Inf {
		p.limiter.Store(rate.NewLimiter(s.rateLimit, s.rateBurst))
	}
	if b, ok := s.metrics.(StatsBinder); ok {
		if err := b.Bind(p.Stats); err != nil {
			return nil, err
		}
	}
	p.base, p.baseDone = s.ctx, s.ctx.Done()
	p.runCtx, p.cancelRun = context.WithCancel(s.ctx)
	p.home = &ctxHome{base: s.ctx, baseDone: s.ctx.Done(), run: p.runCtx, epoch: p.epoch}
	p.size.Store(int64(s.workers))
	p.grow(s.workers)
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
	errs = append(errs, s.retry.validate()...)
	if s.rateSet {
		errs = append(errs, checkRate(s.rateLimit, s.rateBurst))
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
	n := int(p.size.Load())
	p.live.Store(int64(n))
	p.readProcs()
	p.startClock()
	for _, w := range (*p.crew.Load())[:n] {
		w.running = true
		go p.work(w)
	}
	p.logInfo("workpool started", "workers", n, "queue_size", p.q.size)
}

// QueueDepth returns the number of accepted jobs waiting for a worker. It
// equals Stats().Queued.
func (p *Pool[T]) QueueDepth() int { return p.q.len() }

// IsRunning reports whether the pool is between Start and the beginning of
// shutdown, which the end of its base context begins too. Once it reports
// false after Start, Submit and SubmitWait return ErrClosed.
func (p *Pool[T]) IsRunning() bool {
	// The base context's watcher may not have run yet; Submit does not wait
	// for it either (TestBaseEndedNotRunning).
	return p.running.Load() && !p.baseEnded()
}

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

// readProcs reads runtime.GOMAXPROCS again, for idleSpinRounds and the
// queue's stepping aside (see ring.procs); New's ring read it first.
func (p *Pool[T]) readProcs() { p.q.setProcs(runtime.GOMAXPROCS(0)) }
