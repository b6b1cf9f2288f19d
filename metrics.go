package workpool

import "time"

// Metrics receives a pool's events. It is the seam to a metrics backend
// (Prometheus, OpenTelemetry, statsd); [NewPrometheusMetrics] is one.
//
// The methods are called on the hot path, from submitters and workers at
// once: implementations must be safe for concurrent use, must not block and
// should not allocate. The pool reads the clock for the durations only when a
// Metrics other than [NopMetrics] is set.
type Metrics interface {
	// JobSubmitted is called once for each job the pool accepts.
	JobSubmitted()
	// JobRejected is called once for each refused submission, with why:
	// [ReasonQueueFull], [ReasonClosed] or [ReasonCanceled] (SubmitWait's
	// context ended).
	JobRejected(reason DropReason)
	// JobDropped is called once for each accepted job that will not run, with
	// why: [ReasonEvicted], [ReasonClosed], [ReasonShutdown] or [ReasonCanceled].
	JobDropped(reason DropReason)
	// JobStarted is called when a worker starts a job, with how long the job
	// waited in the queue since it was accepted.
	JobStarted(wait time.Duration)
	// JobFinished is called when a handler has finished, with how long it ran
	// and its outcome.
	JobFinished(run time.Duration, outcome Outcome)
}

// RetryMetrics is an optional extension of [Metrics] for pools with a retry
// policy ([WithRetry]): a Metrics that also implements it hears of each
// retry and can keep a gauge of the jobs waiting for one. Every attempt,
// retried or not, is reported by JobStarted and JobFinished.
type RetryMetrics interface {
	// JobRetried is called when an attempt failed and its job will run
	// again after delay: a retry, and one more job waiting for one. The
	// attempt's JobFinished comes first.
	JobRetried(delay time.Duration)
	// RetryEnded is called when a job stops waiting for its retry: its next
	// attempt is about to start, or it is dropped (its JobDropped follows).
	RetryEnded()
}

// A StatsBinder is a [Metrics] that also reads the pool's state, such as a
// collector that reports queue depth at scrape time. [New] calls Bind once
// with the pool's [Pool.Stats] method; an error (for example because the
// value is already bound to another pool) makes New fail.
type StatsBinder interface {
	Bind(stats func() Stats) error
}

// DropReason says why a job was refused or dropped. Its String form is the
// label value used by the Prometheus adapter.
type DropReason uint8

const (
	// ReasonQueueFull: Submit found the queue full under DropNewest.
	ReasonQueueFull DropReason = iota
	// ReasonClosed: the pool was shut down (a refused submission, or a job
	// queued on a pool that never started).
	ReasonClosed
	// ReasonEvicted: the oldest queued job was evicted under DropOldest.
	ReasonEvicted
	// ReasonShutdown: the job was abandoned when the shutdown deadline passed.
	ReasonShutdown
	// ReasonCanceled: a context ended, the pool's base context for a dropped
	// job, SubmitWait's context for a refused one.
	ReasonCanceled
	numReasons
)

var reasonNames = [numReasons]string{"queue_full", "closed", "evicted", "shutdown", "canceled"}

// String returns the reason's label value, such as "queue_full".
func (r DropReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Outcome is how a job's handler finished.
type Outcome uint8

const (
	// OutcomeSuccess: the handler returned nil within its deadline.
	OutcomeSuccess Outcome = iota
	// OutcomeError: the handler returned an error or called runtime.Goexit.
	OutcomeError
	// OutcomePanic: the handler panicked.
	OutcomePanic
	// OutcomeTimeout: the handler returned after its job's deadline.
	OutcomeTimeout
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"success", "error", "panic", "timeout"}

// String returns "success", "error", "panic" or "timeout".
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// NopMetrics is the default [Metrics]: it ignores every event, and with it the
// pool reads no clock for metrics.
type NopMetrics struct{}

// JobSubmitted does nothing.
func (NopMetrics) JobSubmitted() {}

// JobRejected does nothing.
func (NopMetrics) JobRejected(DropReason) {}

// JobDropped does nothing.
func (NopMetrics) JobDropped(DropReason) {}

// JobStarted does nothing.
func (NopMetrics) JobStarted(time.Duration) {}

// JobFinished does nothing.
func (NopMetrics) JobFinished(time.Duration, Outcome) {}

var _ Metrics = NopMetrics{}
