// Package workpool runs jobs of one type on a fixed number of goroutines fed
// by a bounded queue, and never loses a job it accepted.
//
// Choose it over spawning a goroutine per task when work arrives faster than
// it can be done (notifications, webhooks, emails) and you need a bound on
// concurrency and memory, a visible queue, metrics and a clean shutdown.
// Choose [golang.org/x/sync/errgroup] when a fixed batch of tasks belongs to
// one request and the first error should cancel the rest, and
// [golang.org/x/sync/semaphore] when callers should simply wait their turn
// and there is nothing to queue, drop or drain.
//
// # Usage
//
//	pool, err := workpool.New(func(ctx context.Context, n Notification) error {
//		return send(ctx, n)
//	}, workpool.WithWorkers(8), workpool.WithQueueSize(1024))
//	if err != nil {
//		return err
//	}
//	pool.Start()
//	defer pool.Shutdown(context.Background())
//
//	if err := pool.Submit(n); errors.Is(err, workpool.ErrQueueFull) {
//		// shed load: tell the client to retry later
//	}
//
// A producer that would rather wait than shed load, such as a batch job
// reading a file, calls [Pool.SubmitWait], which blocks while the queue is
// full:
//
//	for _, line := range lines {
//		if err := pool.SubmitWait(ctx, line); err != nil {
//			return err // ctx ended, or the pool is shutting down (ErrClosed)
//		}
//	}
//
// # Lifecycle and guarantees
//
// [New] validates the configuration and allocates the queue; no goroutine
// runs until [Pool.Start]. Jobs submitted before Start wait in the queue.
//
// [Pool.Submit] never blocks. When the queue is full it refuses the job
// ([ErrQueueFull]) or, with [DropOldest], accepts it and evicts the oldest
// queued job. [Pool.SubmitWait] blocks for room instead: backpressure.
//
// Every accepted job ends exactly once: its handler runs to completion (on
// its last attempt, with retries), or the job is handed to the [OnDrop] hook
// with the reason. At rest (nothing being submitted or run),
// Stats().Submitted == Completed + Dropped + Queued + Retrying; once
// Shutdown has returned, Queued == Retrying == 0.
//
// [Pool.Shutdown] works like [net/http.Server.Shutdown]: it closes intake at
// once, lets queued and running jobs finish with live contexts, and returns
// nil when they have; every handler's return happens before Shutdown
// returns nil. Past its deadline (the caller's context or
// [WithShutdownTimeout], whichever ends first) it cancels running jobs'
// contexts, hands jobs that never started to OnDrop, and returns the
// context's error. Ending the base context given to [WithContext] stops the
// pool the same way.
//
// Each job's context carries the per-job timeout ([WithJobTimeout], 30s by
// default) and keeps the context.Context contract as
// context.WithTimeout(base, timeout) with a deferred cancel would: it is the
// job's own, it ends for good when the handler returns, and what is derived
// from it ends with it (see [Handler]). Once the base context has ended,
// Submit and SubmitWait return [ErrClosed].
//
// A handler that panics is recovered: the job counts as failed and
// panicked, [OnError] receives a [*PanicError] with the value and the stack,
// and the worker goes on serving. A panic is never silent: with neither
// OnError nor a logger ([WithLogger]) it is logged through slog.Default().
// OnDrop receives a [*DropError] that names why the job will not run.
//
// All methods of [Pool] are safe for concurrent use.
//
// # Retries, rate limits and resizing
//
// [WithRetry] retries failed jobs with exponential backoff and jitter, for
// failures that pass, such as a provider's 503:
//
//	pool, err := workpool.New(send,
//		workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 5, InitialBackoff: 200 * time.Millisecond, Jitter: 0.2}),
//		workpool.WithRateLimit(100, 10), // an SMS provider's 100 messages per second
//	)
//
// A job waiting for its retry holds no worker and no room in the queue: it
// waits on a timer, and when it is due a worker takes it before the queue's
// next job. A handler returns [Permanent](err) for a failure no retry can
// fix (a malformed address), and [Attempt](ctx) tells it which attempt it
// runs. The job still counts once: in Submitted when accepted, and in
// Completed (at its last attempt) or Dropped; OnError hears of it once,
// with the last error; Stats().Retries counts the retries and
// Stats().Retrying the jobs waiting for one. A graceful Shutdown still runs
// the retries due before its deadline; at the deadline, or when the base
// context ends, the jobs still waiting go to OnDrop with the stop's reason.
//
// [WithRateLimit] caps how many jobs start per second, with
// golang.org/x/time/rate: a worker takes a token after it takes a job and
// before the handler starts, so handlers never wait for the limit inside,
// and the wait counts as the job's queue wait. A hard stop interrupts the
// wait and the job goes to OnDrop. [Pool.SetRateLimit] changes the limit
// at run time.
//
// [Pool.Resize] changes the number of workers at run time. Shrinking lets
// each running job finish and drops nothing; Stats().Workers follows.
//
// # Configuration
//
// Options are applied in order by [New], then checked together. For settings
// that live in a config file or the environment, [Config] holds the worker
// count, queue size, timeouts, drop policy, retry policy and rate limit as
// plain values with
// mapstructure, yaml and json tags, so it embeds in an application's own
// config struct. [ConfigFromEnv] reads it from <prefix>_MAX_WORKERS and the
// like (the package reads the environment nowhere else), and [WithConfig]
// applies it:
//
//	cfg, err := workpool.ConfigFromEnv("WORKER_POOL") // defaults for unset variables
//	if err != nil {
//		return err // names each bad variable and its value
//	}
//	pool, err := workpool.New(handle, workpool.WithConfig(cfg), workpool.OnDrop(requeue))
//
// Options after WithConfig override it and options before it are overridden,
// so New(h, WithConfig(cfg), WithWorkers(4)) runs 4 workers whatever cfg says.
//
// # Metrics
//
// [Pool.Stats] returns one snapshot of the pool's gauges and counters. To
// feed a metrics backend, give [WithMetrics] a [Metrics]: it receives an
// event for each job accepted, refused, dropped, started and finished. The
// default, [NopMetrics], costs nothing; any other makes the pool read the
// clock three times per job for queue wait and run time.
//
// [NewPrometheusMetrics] is the Prometheus adapter: a collector for one
// pool, registered on the registerer you pass (never the global one unless
// you pass it). Pools that share a registry are told apart by a const label:
//
//	reg := prometheus.NewRegistry()
//	metrics, err := workpool.NewPrometheusMetrics(reg, workpool.PrometheusOptions{
//		Namespace:   "notification",
//		Subsystem:   "worker_pool",
//		ConstLabels: prometheus.Labels{"pool": "email"},
//	})
//	if err != nil {
//		return err // such as a prometheus.AlreadyRegisteredError
//	}
//	pool, err := workpool.New(send, workpool.WithMetrics(metrics))
//
// Its gauges and job counters are read from Stats when Prometheus scrapes,
// so they are exact and cost nothing per job; drops by reason and the wait
// and duration histograms come from the events. At rest,
// dropped_jobs_total summed over its reasons equals Stats().Rejected +
// Stats().Dropped. An adapter serves one pool: New returns an error when
// it is given one already in use.
//
// The repository's deploy directory has a Grafana dashboard and Prometheus
// alert rules (sustained drops, a saturated queue, the error ratio, panics,
// a slow p99) for these metrics under the names above.
//
// # Performance
//
// Submit and the worker loop take no lock, and with the job timeout off
// allocate nothing per job: the queue is a lock-free ring of T allocated by
// New. With the job timeout on (the default), each job's context is 32
// bytes from a per-worker slab of up to 128, and its deadline is timed on a
// pool clock that a timer refreshes while jobs run (for timeouts of 6.4s
// or more; shorter ones read the clock once per job); a handler that never calls its context's Done method
// (directly or by deriving a child) costs no channel or timer, and one that
// does pays about what context.WithTimeout costs (see [Handler]). A
// [Metrics] other than [NopMetrics] makes the pool read the clock for queue
// wait and run time; the Prometheus adapter records them without locks or
// allocations.
//
// A goroutine that loses the race for the queue's head (or tail) to
// another spins for spells of about a microsecond, touching no shared
// memory, while the others keep taking jobs fast, up to 16 spells per call:
// tiny jobs are then taken in streaks instead of moving head's cache line
// between cores on every job, and jobs of a microsecond or more lose one
// spell per lost race (measured with GOMAXPROCS=2; with one P nobody
// spins).
//
// Measured side by side with a bare buffered channel read by two goroutines
// (the benchmarks directory, 2 workers, empty job; medians of per-round
// ratios), the cost depends on the CPU and, on a shared VM, on the run.
// With the job timeout off, serial submit costs 0.97× the channel on an
// Intel Xeon, 1.18× on one AMD EPYC VM (both at earlier commits) and
// 1.14× and 0.92× in two runs on a Turin-class one; from 16 submitters at
// once 0.65×, 0.92×, and 1.04× and 0.69×. With the default 30s job
// timeout it costs 1.85× and 1.52× serially on the Turin-class VM, 1.89×
// and 0.99× from 16 submitters. With a ~1µs job it costs 0.84× to 0.89×
// the channel on all three, and pond, conc, errgroup and ants cost 2.8× to
// 15× the channel per empty job. A queued job takes
// sizeof(T) + 8 bytes. The benchmarks built with -tags workpool_counters
// also report what the dispatch did per job (see the README).
//
// # Examples
//
// Besides the examples in this documentation, the repository's examples
// directory holds complete programs, each with a test: basic (submit,
// refuse, shut down), backpressure (a producer feeding a large input with
// SubmitWait, with progress) and notifications (an HTTP service with
// configuration from the environment, Prometheus metrics, structured logs
// and a graceful shutdown on SIGTERM).
package workpool
