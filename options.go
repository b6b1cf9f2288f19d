package workpool

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// Defaults used by [New] for every setting no option changes.
const (
	DefaultWorkers         = 10
	DefaultQueueSize       = 1000
	DefaultJobTimeout      = 30 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// Upper bounds that keep a typo from allocating the machine away: the queue's
// storage and one record per worker are allocated by [New].
const (
	MaxWorkers   = 1 << 20
	MaxQueueSize = 1 << 30
)

// DropPolicy says what [Pool.Submit] does when the queue is full.
type DropPolicy int

const (
	// DropNewest refuses the new job: Submit returns ErrQueueFull. The default.
	DropNewest DropPolicy = iota
	// DropOldest accepts the new job and evicts the oldest queued one, which
	// is handed to the OnDrop hook with ErrQueueFull.
	DropOldest
)

// String returns "newest" or "oldest".
func (d DropPolicy) String() string {
	switch d {
	case DropNewest:
		return "newest"
	case DropOldest:
		return "oldest"
	}
	return fmt.Sprintf("DropPolicy(%d)", int(d))
}

// An Option configures a [Pool]. Options are applied in order by [New], so a
// later option overrides an earlier one; New then validates the result.
// Option is not generic: the same option value works for pools of any job type.
type Option func(*settings)

// settings is what options write and New validates.
type settings struct {
	workers         int
	queueSize       int
	jobTimeout      time.Duration
	shutdownTimeout time.Duration
	ctx             context.Context
	policy          DropPolicy
	onDrop          any // func(T, error) for the pool's T; checked by New
	onError         any // func(T, error) for the pool's T; checked by New
	logger          *slog.Logger
	metrics         Metrics
	retry           RetryPolicy
	rateLimit       rate.Limit
	rateBurst       int
	rateSet         bool  // WithRateLimit was used: validate it
	configErr       error // why the last WithConfig was invalid; reported by New
}

func defaultSettings() settings {
	return settings{
		workers:         DefaultWorkers,
		queueSize:       DefaultQueueSize,
		jobTimeout:      DefaultJobTimeout,
		shutdownTimeout: DefaultShutdownTimeout,
		ctx:             context.Background(),
		policy:          DropNewest,
		metrics:         NopMetrics{},
	}
}

// WithWorkers sets how many handlers run at once. Default 10; range 1 to
// [MaxWorkers]. Workers are goroutines started by [Pool.Start].
func WithWorkers(n int) Option { return func(s *settings) { s.workers = n } }

// WithQueueSize sets how many accepted jobs may wait for a worker. Default
// 1000; range 1 to [MaxQueueSize]. The queue's storage is allocated by [New].
func WithQueueSize(n int) Option { return func(s *settings) { s.queueSize = n } }

// WithJobTimeout bounds each job: the handler's context carries a deadline
// at least d and at most d + d/64 after the job starts, and a handler that
// returns after it counts as failed (OnError receives its error, or
// [ErrJobTimeout] if it returned nil). Default 30s; 0 disables the per-job
// timeout; negative is an error. (To save clock reads, a job's start is
// taken from a clock that may lag the real one; the d/64 keeps the deadline
// at least d after the real start. From d = 6.4s on, unless the pool's
// metrics take durations, that clock is refreshed by a timer every d/128
// while jobs run, and this holds unless the timer fires more than d/128
// late (a process frozen or starved of CPU); for shorter timeouts, a
// worker going straight from one job to the next takes the previous job's
// end as the next one's start, and this holds unless the worker is held up
// longer than d/64 right there.)
//
// With the timeout on, each job has a context of its own (see [Handler]),
// 32 bytes from a per-worker slab of up to 128, and a handler that never
// watches it (calls Done or derives a child) costs no timer.
func WithJobTimeout(d time.Duration) Option { return func(s *settings) { s.jobTimeout = d } }

// WithShutdownTimeout bounds [Pool.Shutdown]: it gives up draining this long
// after shutdown began, or when its context ends, whichever is first.
// Default 30s; must be positive.
func WithShutdownTimeout(d time.Duration) Option {
	return func(s *settings) { s.shutdownTimeout = d }
}

// WithContext sets the pool's base context. Every job's context derives from
// it, and when it ends the pool stops at once: intake closes, running jobs
// see the cancellation, and queued jobs are handed to OnDrop with ctx.Err()
// without running. Default context.Background(); nil is an error.
func WithContext(ctx context.Context) Option { return func(s *settings) { s.ctx = ctx } }

// WithDropPolicy chooses what Submit does when the queue is full: refuse the
// new job ([DropNewest], the default) or evict the oldest queued job
// ([DropOldest]).
func WithDropPolicy(p DropPolicy) Option { return func(s *settings) { s.policy = p } }

// OnDrop registers fn to receive every accepted job that will not run, with
// the reason: a *[DropError], whose Reason is evicted (a job evicted by
// [DropOldest]; Err is ErrQueueFull), closed (queued on a pool shut down
// before it started; ErrClosed), shutdown (abandoned when a shutdown
// deadline passed; the deadline's context error) or canceled (abandoned
// when the base context ended; its error). errors.Is matches the underlying
// error; errors.As gives the reason. Refused submissions are not accepted
// jobs: the caller gets their error instead.
//
// fn runs on the goroutine that dropped the job (a submitter, a worker or
// Shutdown) and should return quickly. Its job type must be the pool's: New
// returns an error otherwise.
func OnDrop[T any](fn func(job T, reason error)) Option {
	return func(s *settings) {
		if fn == nil {
			s.onDrop = nilHook{"OnDrop"}
			return
		}
		s.onDrop = fn
	}
}

// OnError registers fn to receive every job whose handler failed: returned an
// error, panicked (err is a *[PanicError]), returned after its deadline
// ([ErrJobTimeout] if it returned nil) or called runtime.Goexit ([ErrGoexit]).
// fn runs on the worker, before the job counts as completed. Its job type must
// be the pool's: New returns an error otherwise.
func OnError[T any](fn func(job T, err error)) Option {
	return func(s *settings) {
		if fn == nil {
			s.onError = nilHook{"OnError"}
			return
		}
		s.onError = fn
	}
}

// WithLogger sets a structured logger: lifecycle events at Info, failed
// jobs at Warn, panics at Error (with the value and the stack), each
// dropped job at Debug, and one Warn line per shutdown or hard stop that
// dropped jobs, with the count per reason. nil, the default, means no
// logging, with one exception: a panic that neither OnError nor a logger
// receives (or a panic in a hook, with no logger) is reported through
// slog.Default() at Error level, so that it is never silent. To silence that
// too, pass slog.New(slog.DiscardHandler).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.logger = l } }

// WithMetrics sets the receiver of the pool's metric events. Default
// [NopMetrics], which costs nothing; nil is an error.
func WithMetrics(m Metrics) Option { return func(s *settings) { s.metrics = m } }

// nilHook marks a hook option given a nil function, so New can name it.
type nilHook struct{ name string }
