package workpool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RetryPolicy says how a pool retries failed jobs (see [WithRetry]). The
// zero value means no retry: every job runs once.
//
// A failed attempt (the handler returned an error, ran past its deadline or
// called runtime.Goexit; a panic only with RetryPanics) is retried unless
// the error is permanent ([Permanent]), the job has had MaxAttempts attempts,
// or the pool stopped hard. The next attempt waits a backoff that starts at
// InitialBackoff and grows by Multiplier per attempt up to MaxBackoff, less
// a random part of at most Jitter of it: after attempt n the wait is
// min(InitialBackoff×Multiplier^(n-1), MaxBackoff)×(1-Jitter×U), U uniform in
// [0,1). While it waits the job holds no worker and no room in the queue.
type RetryPolicy struct {
	// MaxAttempts is how many times a job may run in all, the first time
	// included. 0 or 1: no retry; at most math.MaxInt32.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt. Default 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait. Default 10s; at least InitialBackoff.
	MaxBackoff time.Duration
	// Multiplier is how much the wait grows per attempt. Default 2; at
	// least 1.
	Multiplier float64
	// Jitter is the largest fraction of each wait taken off at random, so
	// that jobs that failed together do not all come back together: 0.2
	// spreads them over the last fifth. 0 (the default): exact waits; at
	// most 1.
	Jitter float64
	// RetryPanics retries attempts that panicked too. Default false: a
	// panic is a bug that a retry would likely repeat.
	RetryPanics bool
}

// Defaults of a [RetryPolicy] whose fields are left zero.
const (
	DefaultRetryInitialBackoff = 100 * time.Millisecond
	DefaultRetryMaxBackoff     = 10 * time.Second
	DefaultRetryMultiplier     = 2.0
)

// WithRetry sets the pool's retry policy. Default: no retry. New returns an
// error naming each invalid field.
//
// A job due for a retry needs no room in the queue: it waits in the pool's
// retry list, which workers serve before the queue, so a full queue never
// refuses, loses or delays it behind new work, and no worker waits for
// room. The queue size bounds new submissions only. The jobs waiting for a
// retry (Stats().Retrying) are bounded by the time each may wait: during an
// outage that fails every attempt, by the rate of accepted jobs times the sum
// of a job's backoffs. Keep MaxAttempts and MaxBackoff to what the service
// can hold, and watch the retry_waiting_jobs gauge.
func WithRetry(p RetryPolicy) Option { return func(s *settings) { s.retry = p } }

// withDefaults fills the zero fields.
func (r RetryPolicy) withDefaults() RetryPolicy {
	if r.InitialBackoff == 0 {
		r.InitialBackoff = DefaultRetryInitialBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(DefaultRetryMaxBackoff, r.InitialBackoff)
	}
	if r.Multiplier == 0 {
		r.Multiplier = DefaultRetryMultiplier
	}
	return r
}

// validate returns one error per invalid field.
func (r RetryPolicy) validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("workpool: retry policy: "+format, args...))
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > math.MaxInt32 {
		bad("max attempts must be between 0 and %d, got %d", math.MaxInt32, r.MaxAttempts)
	}
	if r.InitialBackoff < 0 {
		bad("initial backoff must not be negative, got %v", r.InitialBackoff)
	}
	if r.MaxBackoff < 0 {
		bad("max backoff must not be negative, got %v", r.MaxBackoff)
	}
	if r.InitialBackoff > 0 && r.MaxBackoff > 0 && r.MaxBackoff < r.InitialBackoff {
		bad("max backoff %v is less than initial backoff %v", r.MaxBackoff, r.InitialBackoff)
	}
	if r.Multiplier != 0 && !(r.Multiplier >= 1 && r.Multiplier <= math.MaxFloat64) {
		bad("multiplier must be at least 1, got %v", r.Multiplier)
	}
	if !(r.Jitter >= 0 && r.Jitter <= 1) {
		bad("jitter must be between 0 and 1, got %v", r.Jitter)
	}
	return errs
}

// backoff returns the wait after failed attempt n (1 for the first).
func (r RetryPolicy) backoff(n int) time.Duration {
	d := min(float64(r.InitialBackoff)*math.Pow(r.Multiplier, float64(n-1)), float64(r.MaxBackoff))
	if r.Jitter > 0 {
		d -= d * r.Jitter * rand.Float64()
	}
	// float64 of a MaxBackoff near MaxInt64 rounds up to 2^63, which would
	// overflow to a negative Duration: convert only what is below the cap.
	if d >= float64(r.MaxBackoff) {
		return r.MaxBackoff
	}
	return time.Duration(d)
}

// PermanentError marks a handler's error as not worth a retry: see
// [Permanent]. Its Error is the wrapped error's, and errors.Is and
// errors.As see through it.
type PermanentError struct {
	Err error
}

// Error returns the wrapped error's message.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the pool does not retry the job whose handler
// returned it, whatever its retry policy: for input that can never succeed,
// such as a malformed address. OnError receives the wrapped error, which
// errors.Is still matches with err's chain and errors.As with
// *[PermanentError]. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error in its chain, was made by
// [Permanent].
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

type attemptKey struct{}

// withAttempt returns ctx carrying attempt for Attempt. Out of line, so that
// run's frame stays as it was without retries.
//
//go:noinline
func withAttempt(ctx context.Context, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt)
}

// Attempt returns which attempt of its job a handler's ctx belongs to: 1 for
// the first run, 2 for the first retry, and so on (see [WithRetry]). It
// returns 1 for a context that did not come from a retried attempt, such as
// any job's first run, or a context from outside a pool.
func Attempt(ctx context.Context) int {
	if n, ok := ctx.Value(attemptKey{}).(int); ok {
		return n
	}
	return 1
}

// retrier holds the jobs that wait for a retry: scheduled ones until their
// timer fires, then ready ones until a worker takes them. They are accepted
// jobs, so none may be lost: each leaves by being taken (its next attempt
// starts) or dropped at a hard stop.
type retrier[T any] struct {
	policy  RetryPolicy  // with defaults; never changed
	metrics RetryMetrics // nil when the pool's Metrics does not implement it

	mu        sync.Mutex
	closed    bool                      // guarded by mu: a hard stop began; schedule refuses
	scheduled map[*retryEntry[T]]uint64 // guarded by mu: entry -> order of scheduling
	ready     []*retryEntry[T]          // guarded by mu: due, oldest first
	seq       uint64                    // guarded by mu: counts schedulings

	// readyN is len(ready), written under mu, read by workers without it.
	readyN atomic.Int64
	// waiting counts jobs between a failed attempt and their next start
	// (or drop): scheduled, ready, or taken by a worker that has not yet
	// started it. Raised under mu before a job is scheduled; lowered when it
	// is taken or dropped.
	waiting atomic.Int64
	retries atomic.Uint64 // retries scheduled: attempts beyond the first
}

type retryEntry[T any] struct {
	job     T
	attempt int   // the attempt to run next: 2 for the first retry
	stamp   int64 // when it became due, on the pool's clock (if timed)
	timer   *time.Timer
}

func newRetrier[T any](policy RetryPolicy, m Metrics) *retrier[T] {
	r := &retrier[T]{policy: policy.withDefaults(), scheduled: make(map[*retryEntry[T]]uint64)}
	r.metrics, _ = m.(RetryMetrics)
	return r
}

// retryReady reports whether a retry is due and not taken.
func (p *Pool[T]) retryReady() bool { return p.retry != nil && p.retry.readyN.Load() > 0 }

// retryWaiting reports whether any job waits for a retry.
func (p *Pool[T]) retryWaiting() bool { return p.retry != nil && p.retry.waiting.Load() > 0 }

// retryLater is called by run for a failed attempt. If the job may be
// retried it schedules the next attempt and returns true: the attempt then
// does not count as a finished job (Completed counts each job once, at its
// last attempt) and OnError is not called. Otherwise the caller finishes the
// job as usual.
func (p *Pool[T]) retryLater(w *worker, job T, err error, outcome Outcome, ran time.Duration) bool {
	r := p.retry
	attempt := max(int(w.attempt), 1)
	if attempt >= r.policy.MaxAttempts ||
		(outcome == OutcomePanic && !r.policy.RetryPanics) ||
		IsPermanent(err) || p.stopping() {
		return false
	}
	delay := r.policy.backoff(attempt)
	// Uncount the attempt first: until the job is scheduled it is neither
	// active nor waiting, so a hard stop waiting for every job to be
	// accounted for waits for it, rather than missing it.
	w.started--
	w.state.Store(2 * w.started)
	if !r.schedule(p, job, attempt+1, delay, ran, outcome) {
		// A hard stop began: this attempt was the job's last, and finishes
		// as usual.
		w.started++
		w.state.Store(2*(w.started-1) + 1)
		if p.aborted.Load() {
			p.signal()
		}
		return false
	}
	p.logRetry(job, attempt, delay, err, outcome)
	return true
}

// schedule puts job in the retry schedule to run as attempt after delay,
// and reports the failed attempt (it ran for ran, with outcome) to the
// metrics. It returns false, reporting nothing, once a hard stop began.
func (r *retrier[T]) schedule(p *Pool[T], job T, attempt int, delay, ran time.Duration, outcome Outcome) bool {
	e := &retryEntry[T]{job: job, attempt: attempt}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.waiting.Add(1)
	r.retries.Add(1)
	p.metrics.JobFinished(ran, outcome) // every attempt is in the histograms
	if r.metrics != nil {
		r.metrics.JobRetried(delay) // before the timer: before the job can be taken
	}
	r.seq++
	r.scheduled[e] = r.seq
	e.timer = time.AfterFunc(delay, func() { r.due(p, e) })
	return true
}

// due moves e from the schedule to the ready list and wakes a parked
// worker for it. A dropped entry's timer may still fire: then it does
// nothing.
func (r *retrier[T]) due(p *Pool[T], e *retryEntry[T]) {
	r.mu.Lock()
	if _, ok := r.scheduled[e]; !ok {
		r.mu.Unlock()
		return
	}
	delete(r.scheduled, e)
	if p.timed {
		e.stamp = p.clock() // its queue wait counts from now
	}
	r.ready = append(r.ready, e)
	r.readyN.Add(1)
	r.mu.Unlock()
	// Made ready, then look at sleepers: a parking worker announces, then
	// looks at readyN (see park).
	if p.sleepers.Load() > 0 && p.claimSleeper() {
		p.wake <- struct{}{}
	}
}

// take removes the oldest ready retry, or returns nil if another worker was
// first.
func (r *retrier[T]) take(p *Pool[T]) *retryEntry[T] {
	r.mu.Lock()
	if len(r.ready) == 0 {
		r.mu.Unlock()
		return nil
	}
	e := r.ready[0]
	r.ready[0] = nil
	r.ready = r.ready[1:]
	r.readyN.Add(-1)
	r.mu.Unlock()
	if r.ended() == 0 && p.q.closed() {
		// Workers parked after intake closed waited for retries only: now
		// none can appear, so they may exit.
		p.wakeAll()
	}
	return e
}

// dropRetries hands every job waiting for a retry to OnDrop with the hard
// stop's reason, and refuses retries from then on.
func (p *Pool[T]) dropRetries() {
	r := p.retry
	if r == nil {
		return
	}
	r.mu.Lock()
	r.closed = true
	list := r.ready // due ones first: they were next
	sched := len(list)
	for e := range r.scheduled {
		e.timer.Stop() // if it fires anyway, due finds it gone
		list = append(list, e)
	}
	order := r.scheduled
	slices.SortFunc(list[sched:], func(a, b *retryEntry[T]) int { return cmp.Compare(order[a], order[b]) })
	r.scheduled = make(map[*retryEntry[T]]uint64)
	r.ready = nil
	r.readyN.Store(0)
	r.mu.Unlock()
	p.dropWaiting(list)
}

// dropWaiting drops the entries of dropRetries. If OnDrop ends the
// goroutine (runtime.Goexit), a new goroutine drops the rest, so that none
// is left unaccounted for.
func (p *Pool[T]) dropWaiting(list []*retryEntry[T]) {
	r := p.retry
	i := 0
	defer func() {
		if i < len(list) {
			// list[i] was uncounted from waiting before its drop, whose own
			// defer counted it as dropped.
			rest := list[i+1:]
			go func() {
				p.dropWaiting(rest)
				// The rest of the abort that called us: the queue's drain
				// (TestRetryDropGoexitStillDrains). Its dropRetries finds
				// nothing left.
				p.abort(p.abortErr, p.abortReason)
			}()
		}
	}()
	for ; i < len(list); i++ {
		// Uncounted from waiting before the drop counts it and signals: a
		// Shutdown woken by that signal must find it waiting no more
		// (TestShutdownAfterRetriesDropped).
		r.ended()
		p.drop(list[i].job, p.abortReason, p.abortErr, true)
	}
	if r.waiting.Load() == 0 {
		p.wakeAll() // workers parked for these retries may exit now
	}
}

// ended records that a job no longer waits (taken or dropped) and returns
// how many still do.
func (r *retrier[T]) ended() int64 {
	if r.metrics != nil {
		r.metrics.RetryEnded()
	}
	return r.waiting.Add(-1)
}

// logRetry logs a failed attempt that will be retried: at Warn with the
// pool's logger, and a panic, which is a bug even when retried, also
// without one (see reportPanic).
func (p *Pool[T]) logRetry(job T, attempt int, delay time.Duration, err error, outcome Outcome) {
	log := p.log
	if log == nil {
		if outcome != OutcomePanic {
			return
		}
		log = slog.Default()
	}
	args := []any{"attempt", attempt, "retry_in", delay, "outcome", outcome.String(), "err", err}
	if pe, ok := err.(*PanicError); ok {
		args = append(args, "stack", string(pe.Stack))
	}
	log.Warn("workpool job failed, will retry", args...)
}
