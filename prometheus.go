package workpool

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Default histogram buckets, in seconds. They are copied into each adapter,
// never handed out, so no caller can change them for another.
var (
	// From 10 ms to 10 s: sending a notification or calling a webhook.
	defaultDurationBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// Queue wait is often far below a millisecond on an idle pool, and
	// seconds on a backlogged one.
	defaultWaitBuckets = []float64{.0001, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// PrometheusOptions configures [NewPrometheusMetrics]. The zero value is
// usable: bare metric names, no const labels and the default buckets.
type PrometheusOptions struct {
	// Namespace and Subsystem prefix every metric name as
	// <Namespace>_<Subsystem>_<name>, as in prometheus.BuildFQName. Either
	// may be empty. With "notification" and "worker_pool" the names are
	// such as notification_worker_pool_queue_depth.
	Namespace, Subsystem string

	// ConstLabels are added to every metric. Give each pool that shares a
	// registry its own value, such as {"pool": "email"}. "le" (used by
	// histograms) and "reason" (used by dropped_jobs_total) are reserved.
	ConstLabels prometheus.Labels

	// DurationBuckets are the upper bounds, in seconds, of the
	// job_duration_seconds histogram; they must be strictly increasing.
	// Default: .01, .05, .1, .25, .5, 1, 2.5, 5, 10.
	DurationBuckets []float64

	// WaitBuckets are the upper bounds, in seconds, of the job_wait_seconds
	// histogram; they must be strictly increasing.
	// Default: .0001, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10.
	WaitBuckets []float64
}

// PrometheusMetrics is a [Metrics] that exports one pool's metrics to
// Prometheus. It is a prometheus.Collector, registered by
// [NewPrometheusMetrics]; give it to exactly one pool with [WithMetrics].
//
// The gauges and most counters are read from the pool's [Pool.Stats] when
// Prometheus collects, as prometheus/collectors reads database/sql's
// DBStats: they are exact, cost nothing per job, and each scrape reports one
// Stats snapshot. Only dropped_jobs_total (by reason), retries_total and the
// two histograms are recorded from events, without locks or allocations. At
// rest, the sum of dropped_jobs_total over its reasons equals
// Stats().Rejected + Stats().Dropped, retries_total equals Stats().Retries,
// and each histogram's count equals Stats().Completed + Stats().Retries: the
// histograms observe every attempt, and each finished attempt is either its
// job's last (counted once in Completed) or one that is retried. Without a
// retry policy, retries_total and retry_waiting_jobs stay 0.
//
// Until [New] binds it to a pool, the metrics read from the pool report 0.
// All methods are safe for concurrent use.
type PrometheusMetrics struct {
	stats atomic.Pointer[func() Stats] // set once by Bind

	// Written by submitters, workers and Shutdown; read by Collect.
	dropped [numReasons]atomic.Uint64
	retries atomic.Uint64 // written by workers

	duration, wait *histogram // safe for concurrent use

	// Set by NewPrometheusMetrics and never changed.
	queueDepth, activeWorkers, workers, queueCapacity *prometheus.Desc
	submitted, completed, failed, panicked            *prometheus.Desc
	retryWaiting                                      *prometheus.Desc
	droppedDesc, retriesDesc                          *prometheus.Desc
}

var (
	_ Metrics              = (*PrometheusMetrics)(nil)
	_ RetryMetrics         = (*PrometheusMetrics)(nil)
	_ StatsBinder          = (*PrometheusMetrics)(nil)
	_ prometheus.Collector = (*PrometheusMetrics)(nil)
)

// NewPrometheusMetrics returns a Prometheus adapter for one pool and
// registers it on reg. It returns an error for a nil reg, for buckets that
// are not strictly increasing, for a reserved const label, and whatever
// reg.Register returns: a [prometheus.AlreadyRegisteredError] (reachable with
// errors.As) when reg already has metrics of the same names and const
// labels, for example a second pool's adapter without its own label. It
// never panics and never touches the global registry unless reg is
// prometheus.DefaultRegisterer.
//
// The metrics, each prefixed <Namespace>_<Subsystem>_:
//
//   - queue_depth, active_workers, workers, queue_capacity (gauges):
//     Stats' Queued, Active, Workers and QueueCapacity at scrape time;
//   - submitted_jobs_total, completed_jobs_total, errors_total, panics_total
//     (counters): Stats' Submitted, Completed, Failed and Panicked;
//   - dropped_jobs_total{reason} (counter): jobs refused by Submit or
//     SubmitWait (reasons queue_full, closed, canceled) plus accepted jobs
//     handed to OnDrop (evicted, shutdown, closed, canceled); see [DropReason];
//   - retries_total (counter): retries scheduled, that is attempts beyond
//     each job's first ([WithRetry]), as Stats' Retries;
//   - retry_waiting_jobs (gauge): Stats' Retrying at scrape time, the jobs
//     whose attempt failed and whose next attempt has not started;
//   - job_duration_seconds (histogram): how long each finished attempt's
//     handler ran;
//   - job_wait_seconds (histogram): how long each started attempt had
//     waited since its job was accepted, or, for a retry, since it fell due.
func NewPrometheusMetrics(reg prometheus.Registerer, opts PrometheusOptions) (*PrometheusMetrics, error) {
	if reg == nil {
		return nil, errors.New("workpool: NewPrometheusMetrics: registerer is nil")
	}
	durBuckets, err := buckets("DurationBuckets", opts.DurationBuckets, defaultDurationBuckets)
	if err != nil {
		return nil, err
	}
	waitBuckets, err := buckets("WaitBuckets", opts.WaitBuckets, defaultWaitBuckets)
	if err != nil {
		return nil, err
	}
	for _, l := range []string{"le", "reason"} {
		if _, ok := opts.ConstLabels[l]; ok {
			return nil, fmt.Errorf("workpool: NewPrometheusMetrics: const label %q is reserved", l)
		}
	}

	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, opts.Subsystem, name),
			help, labels, opts.ConstLabels)
	}
	hist := func(name, help string, b []float64) *histogram {
		return newHistogram(desc(name, help), b)
	}
	m := &PrometheusMetrics{
		queueDepth:    desc("queue_depth", "Jobs accepted and waiting for a worker."),
		activeWorkers: desc("active_workers", "Workers running a job now."),
		workers:       desc("workers", "Configured number of workers."),
		queueCapacity: desc("queue_capacity", "Configured queue size: the most jobs that may wait."),
		submitted:     desc("submitted_jobs_total", "Jobs accepted by Submit or SubmitWait."),
		completed:     desc("completed_jobs_total", "Jobs whose handler finished, whatever the outcome."),
		failed: desc("errors_total",
			"Finished jobs that failed: returned an error, panicked, timed out or called runtime.Goexit."),
		panicked: desc("panics_total", "Finished jobs whose handler panicked."),
		retryWaiting: desc("retry_waiting_jobs",
			"Jobs whose attempt failed, waiting for their next attempt to start."),
		droppedDesc: desc("dropped_jobs_total",
			"Jobs that will not run: submissions refused and accepted jobs dropped, by reason.", "reason"),
		retriesDesc: desc("retries_total", "Retries scheduled: attempts beyond each job's first."),
		duration:    hist("job_duration_seconds", "How long each finished attempt's handler ran.", durBuckets),
		wait: hist("job_wait_seconds",
			"How long each started attempt waited since its job was accepted, or its retry fell due.", waitBuckets),
	}
	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("workpool: registering Prometheus metrics: %w", err)
	}
	return m, nil
}

// Bind implements [StatsBinder]: [New] calls it with the pool's Stats
// method. It returns an error if m is already bound to a pool, since one
// adapter's numbers can describe only one pool.
func (m *PrometheusMetrics) Bind(stats func() Stats) error {
	if stats == nil {
		return errors.New("workpool: PrometheusMetrics.Bind: stats is nil")
	}
	if !m.stats.CompareAndSwap(nil, &stats) {
		return errors.New("workpool: PrometheusMetrics is already attached to a pool; " +
			"create one adapter per pool, told apart by ConstLabels")
	}
	return nil
}

// JobSubmitted does nothing: submitted_jobs_total is read from Stats.
func (m *PrometheusMetrics) JobSubmitted() {}

// JobRejected counts a refused submission in dropped_jobs_total.
func (m *PrometheusMetrics) JobRejected(reason DropReason) { m.countDrop(reason) }

// JobDropped counts an accepted job that will not run in dropped_jobs_total.
func (m *PrometheusMetrics) JobDropped(reason DropReason) { m.countDrop(reason) }

// JobStarted observes the attempt's queue wait in job_wait_seconds.
func (m *PrometheusMetrics) JobStarted(wait time.Duration) { m.wait.observe(wait) }

// JobFinished observes the attempt's run time in job_duration_seconds. The
// outcome is counted from Stats.
func (m *PrometheusMetrics) JobFinished(run time.Duration, _ Outcome) {
	m.duration.observe(run)
}

// JobRetried implements [RetryMetrics]: it counts the retry in
// retries_total.
func (m *PrometheusMetrics) JobRetried(time.Duration) { m.retries.Add(1) }

// RetryEnded implements [RetryMetrics]. It does nothing: retry_waiting_jobs
// is read from Stats.
func (m *PrometheusMetrics) RetryEnded() {}

// Describe implements prometheus.Collector.
func (m *PrometheusMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs() {
		ch <- d
	}
	ch <- m.droppedDesc
	ch <- m.retriesDesc
	ch <- m.duration.desc
	ch <- m.wait.desc
}

// Collect implements prometheus.Collector. It takes one Stats snapshot of
// the bound pool (zeros before [New] binds one).
func (m *PrometheusMetrics) Collect(ch chan<- prometheus.Metric) {
	var s Stats
	if stats := m.stats.Load(); stats != nil {
		s = (*stats)()
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	values := []struct {
		t prometheus.ValueType
		v float64
	}{
		{gauge, float64(s.Queued)},
		{gauge, float64(s.Active)},
		{gauge, float64(s.Workers)},
		{gauge, float64(s.QueueCapacity)},
		{counter, float64(s.Submitted)},
		{counter, float64(s.Completed)},
		{counter, float64(s.Failed)},
		{counter, float64(s.Panicked)},
		{gauge, float64(s.Retrying)},
	}
	for i, d := range m.descs() {
		ch <- constMetric(d, values[i].t, values[i].v)
	}
	for r := range numReasons {
		ch <- constMetric(m.droppedDesc, counter, float64(m.dropped[r].Load()), r.String())
	}
	ch <- constMetric(m.retriesDesc, counter, float64(m.retries.Load()))
	ch <- m.duration.metric()
	ch <- m.wait.metric()
}

// descs lists the metrics read from Stats, in the order Collect fills them.
func (m *PrometheusMetrics) descs() [9]*prometheus.Desc {
	return [...]*prometheus.Desc{
		m.queueDepth, m.activeWorkers, m.workers, m.queueCapacity,
		m.submitted, m.completed, m.failed, m.panicked, m.retryWaiting,
	}
}

func (m *PrometheusMetrics) countDrop(reason DropReason) {
	if reason < numReasons {
		m.dropped[reason].Add(1)
	}
}

// constMetric is prometheus.MustNewConstMetric without the panic: a bad
// desc is reported to the registry as an invalid metric.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// buckets returns a private copy of b, or of def if b is empty, after
// checking that the bounds are strictly increasing numbers.
func buckets(field string, b, def []float64) ([]float64, error) {
	if len(b) == 0 {
		return slices.Clone(def), nil
	}
	for i, v := range b {
		if math.IsNaN(v) {
			return nil, fmt.Errorf("workpool: NewPrometheusMetrics: %s[%d] is NaN", field, i)
		}
		if i > 0 && v <= b[i-1] {
			return nil, fmt.Errorf("workpool: NewPrometheusMetrics: %s must be strictly increasing, got %v after %v",
				field, v, b[i-1])
		}
	}
	return slices.Clone(b), nil
}
