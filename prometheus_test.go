package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/workpool-go/workpool"
)

// Jobs of the scripted workload.
const (
	scriptOK = iota
	scriptFail
	scriptPanic
	scriptHold // reports its start on the gate and waits for its release
)

func scriptHandler(g *gate) workpool.Handler[int] {
	return func(ctx context.Context, n int) error {
		switch n {
		case scriptFail:
			return errors.New("failed")
		case scriptPanic:
			panic("boom")
		case scriptHold:
			return g.handle(ctx, n)
		}
		return nil
	}
}

// seedOpts gives the originating plan's metric names, for the pool named by
// the pool label.
func seedOpts(pool string) workpool.PrometheusOptions {
	return workpool.PrometheusOptions{
		Namespace:   "notification",
		Subsystem:   "worker_pool",
		ConstLabels: prometheus.Labels{"pool": pool},
	}
}

func newMetrics(t *testing.T, reg prometheus.Registerer, opts workpool.PrometheusOptions) *workpool.PrometheusMetrics {
	t.Helper()
	m, err := workpool.NewPrometheusMetrics(reg, opts)
	if err != nil {
		t.Fatalf("NewPrometheusMetrics: %v", err)
	}
	return m
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s = %v; want %v", what, got, want)
	}
}

// The metrics compared as text; the histograms' buckets depend on timing,
// so they are checked by count.
var seedCounterNames = []string{
	"notification_worker_pool_queue_depth",
	"notification_worker_pool_active_workers",
	"notification_worker_pool_workers",
	"notification_worker_pool_queue_capacity",
	"notification_worker_pool_submitted_jobs_total",
	"notification_worker_pool_completed_jobs_total",
	"notification_worker_pool_errors_total",
	"notification_worker_pool_panics_total",
	"notification_worker_pool_dropped_jobs_total",
	"notification_worker_pool_retries_total",
	"notification_worker_pool_retry_waiting_jobs",
}

// TestPrometheusScripted runs a scripted workload on three pools that share
// a pedantic registry and compares the exact exposition.
func TestPrometheusScripted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	// email refuses when full: successes, an error, a panic, queue-full
	// and canceled refusals, and a shutdown whose deadline abandons jobs.
	emailGate := newGate()
	email := newPool(t, scriptHandler(emailGate), workpool.WithWorkers(1), workpool.WithQueueSize(2),
		workpool.WithMetrics(newMetrics(t, reg, seedOpts("email"))))
	email.Start()
	for _, j := range []int{scriptOK, scriptOK, scriptFail, scriptPanic, scriptHold} {
		if err := email.SubmitWait(context.Background(), j); err != nil {
			t.Fatalf("SubmitWait(%d) = %v", j, err)
		}
	}
	// One worker: once the holder starts, every earlier job is accounted for.
	recv(t, emailGate.started, "the holder")
	for range 2 {
		wantErr(t, "Submit with room", email.Submit(scriptOK), nil)
	}
	for range 3 {
		wantErr(t, "Submit on a full queue", email.Submit(scriptOK), workpool.ErrQueueFull)
	}
	wantErr(t, "SubmitWait(canceled) on a full queue", email.SubmitWait(canceled, scriptOK), context.Canceled)

	busy := `
# HELP notification_worker_pool_active_workers Workers running a job now.
# TYPE notification_worker_pool_active_workers gauge
notification_worker_pool_active_workers{pool="email"} 1
# HELP notification_worker_pool_queue_depth Jobs accepted and waiting for a worker.
# TYPE notification_worker_pool_queue_depth gauge
notification_worker_pool_queue_depth{pool="email"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(busy),
		"notification_worker_pool_active_workers", "notification_worker_pool_queue_depth"); err != nil {
		t.Errorf("gauges while busy: %v", err)
	}

	// The deadline has passed: the two queued jobs are dropped at once.
	wantErr(t, "Shutdown(canceled)", email.Shutdown(canceled), context.Canceled)
	close(emailGate.release)
	// Waits for the holder to finish; reports the earlier stop's error.
	wantErr(t, "second Shutdown", email.Shutdown(context.Background()), context.Canceled)
	wantErr(t, "Submit after Shutdown", email.Submit(scriptOK), workpool.ErrClosed)

	// sms evicts the oldest queued job when full.
	smsGate := newGate()
	sms := newPool(t, scriptHandler(smsGate), workpool.WithWorkers(1), workpool.WithQueueSize(1),
		workpool.WithDropPolicy(workpool.DropOldest), workpool.WithMetrics(newMetrics(t, reg, seedOpts("sms"))))
	sms.Start()
	wantErr(t, "Submit", sms.Submit(scriptHold), nil)
	recv(t, smsGate.started, "the holder")
	for range 3 {
		wantErr(t, "Submit under DropOldest", sms.Submit(scriptOK), nil)
	}
	close(smsGate.release)
	shutdown(t, sms)
	wantErr(t, "Submit after Shutdown", sms.Submit(scriptOK), workpool.ErrClosed)

	// push is shut down without ever starting: its queued jobs are dropped.
	push := newPool(t, scriptHandler(nil), workpool.WithWorkers(3), workpool.WithQueueSize(4),
		workpool.WithMetrics(newMetrics(t, reg, seedOpts("push"))))
	for range 2 {
		wantErr(t, "Submit before Start", push.Submit(scriptOK), nil)
	}
	shutdown(t, push)

	checkStats(t, email.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 2,
		Submitted: 7, Rejected: 5, Completed: 5, Failed: 2, Panicked: 1, Dropped: 2})
	checkStats(t, sms.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 1,
		Submitted: 4, Rejected: 1, Completed: 2, Dropped: 2})
	checkStats(t, push.Stats(), workpool.Stats{Workers: 3, QueueCapacity: 4, Submitted: 2, Dropped: 2})

	want := `
# HELP notification_worker_pool_active_workers Workers running a job now.
# TYPE notification_worker_pool_active_workers gauge
notification_worker_pool_active_workers{pool="email"} 0
notification_worker_pool_active_workers{pool="push"} 0
notification_worker_pool_active_workers{pool="sms"} 0
# HELP notification_worker_pool_completed_jobs_total Jobs whose handler finished, whatever the outcome.
# TYPE notification_worker_pool_completed_jobs_total counter
notification_worker_pool_completed_jobs_total{pool="email"} 5
notification_worker_pool_completed_jobs_total{pool="push"} 0
notification_worker_pool_completed_jobs_total{pool="sms"} 2
# HELP notification_worker_pool_dropped_jobs_total Jobs that will not run: submissions refused and accepted jobs dropped, by reason.
# TYPE notification_worker_pool_dropped_jobs_total counter
notification_worker_pool_dropped_jobs_total{pool="email",reason="canceled"} 1
notification_worker_pool_dropped_jobs_total{pool="email",reason="closed"} 1
notification_worker_pool_dropped_jobs_total{pool="email",reason="evicted"} 0
notification_worker_pool_dropped_jobs_total{pool="email",reason="queue_full"} 3
notification_worker_pool_dropped_jobs_total{pool="email",reason="shutdown"} 2
notification_worker_pool_dropped_jobs_total{pool="push",reason="canceled"} 0
notification_worker_pool_dropped_jobs_total{pool="push",reason="closed"} 2
notification_worker_pool_dropped_jobs_total{pool="push",reason="evicted"} 0
notification_worker_pool_dropped_jobs_total{pool="push",reason="queue_full"} 0
notification_worker_pool_dropped_jobs_total{pool="push",reason="shutdown"} 0
notification_worker_pool_dropped_jobs_total{pool="sms",reason="canceled"} 0
notification_worker_pool_dropped_jobs_total{pool="sms",reason="closed"} 1
notification_worker_pool_dropped_jobs_total{pool="sms",reason="evicted"} 2
notification_worker_pool_dropped_jobs_total{pool="sms",reason="queue_full"} 0
notification_worker_pool_dropped_jobs_total{pool="sms",reason="shutdown"} 0
# HELP notification_worker_pool_errors_total Finished jobs that failed: returned an error, panicked, timed out or called runtime.Goexit.
# TYPE notification_worker_pool_errors_total counter
notification_worker_pool_errors_total{pool="email"} 2
notification_worker_pool_errors_total{pool="push"} 0
notification_worker_pool_errors_total{pool="sms"} 0
# HELP notification_worker_pool_panics_total Finished jobs whose handler panicked.
# TYPE notification_worker_pool_panics_total counter
notification_worker_pool_panics_total{pool="email"} 1
notification_worker_pool_panics_total{pool="push"} 0
notification_worker_pool_panics_total{pool="sms"} 0
# HELP notification_worker_pool_queue_capacity Configured queue size: the most jobs that may wait.
# TYPE notification_worker_pool_queue_capacity gauge
notification_worker_pool_queue_capacity{pool="email"} 2
notification_worker_pool_queue_capacity{pool="push"} 4
notification_worker_pool_queue_capacity{pool="sms"} 1
# HELP notification_worker_pool_queue_depth Jobs accepted and waiting for a worker.
# TYPE notification_worker_pool_queue_depth gauge
notification_worker_pool_queue_depth{pool="email"} 0
notification_worker_pool_queue_depth{pool="push"} 0
notification_worker_pool_queue_depth{pool="sms"} 0
# HELP notification_worker_pool_retries_total Retries scheduled: attempts beyond each job's first.
# TYPE notification_worker_pool_retries_total counter
notification_worker_pool_retries_total{pool="email"} 0
notification_worker_pool_retries_total{pool="push"} 0
notification_worker_pool_retries_total{pool="sms"} 0
# HELP notification_worker_pool_retry_waiting_jobs Jobs whose attempt failed, waiting for their next attempt to start.
# TYPE notification_worker_pool_retry_waiting_jobs gauge
notification_worker_pool_retry_waiting_jobs{pool="email"} 0
notification_worker_pool_retry_waiting_jobs{pool="push"} 0
notification_worker_pool_retry_waiting_jobs{pool="sms"} 0
# HELP notification_worker_pool_submitted_jobs_total Jobs accepted by Submit or SubmitWait.
# TYPE notification_worker_pool_submitted_jobs_total counter
notification_worker_pool_submitted_jobs_total{pool="email"} 7
notification_worker_pool_submitted_jobs_total{pool="push"} 2
notification_worker_pool_submitted_jobs_total{pool="sms"} 4
# HELP notification_worker_pool_workers Configured number of workers.
# TYPE notification_worker_pool_workers gauge
notification_worker_pool_workers{pool="email"} 1
notification_worker_pool_workers{pool="push"} 3
notification_worker_pool_workers{pool="sms"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), seedCounterNames...); err != nil {
		t.Errorf("exposition after the workload: %v", err)
	}

	wantHist := map[string]uint64{
		"notification_worker_pool_job_duration_seconds/email": 5,
		"notification_worker_pool_job_wait_seconds/email":     5,
		"notification_worker_pool_job_duration_seconds/sms":   2,
		"notification_worker_pool_job_wait_seconds/sms":       2,
		"notification_worker_pool_job_duration_seconds/push":  0,
		"notification_worker_pool_job_wait_seconds/push":      0,
	}
	if diff := cmp.Diff(wantHist, histogramCounts(t, reg, "pool")); diff != "" {
		t.Errorf("histogram sample counts (-want +got):\n%s", diff)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// histogramCounts returns the sample count of every histogram g gathers,
// keyed by name and the value of label.
func histogramCounts(t *testing.T, g prometheus.Gatherer, label string) map[string]uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					key += "/" + l.GetValue()
				}
			}
			var inBuckets uint64
			for _, b := range h.GetBucket() {
				inBuckets = b.GetCumulativeCount()
			}
			if inBuckets > h.GetSampleCount() {
				t.Errorf("%s: last bucket holds %d > count %d", key, inBuckets, h.GetSampleCount())
			}
			counts[key] = h.GetSampleCount()
		}
	}
	return counts
}

// scrape returns every sample g gathers, keyed by name (and reason, for
// dropped_jobs_total); a histogram gives its sample count as name_count.
func scrape(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					key += "{" + l.GetValue() + "}"
				}
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// wantScrape is the scrape that mirrors s at rest, with drops by reason:
// the histograms observe every attempt, the last ones (Completed) and the
// retried ones (Retries).
func wantScrape(s workpool.Stats, drops map[string]uint64) map[string]float64 {
	out := map[string]float64{
		"queue_depth":                float64(s.Queued),
		"active_workers":             float64(s.Active),
		"workers":                    float64(s.Workers),
		"queue_capacity":             float64(s.QueueCapacity),
		"submitted_jobs_total":       float64(s.Submitted),
		"completed_jobs_total":       float64(s.Completed),
		"errors_total":               float64(s.Failed),
		"panics_total":               float64(s.Panicked),
		"retries_total":              float64(s.Retries),
		"retry_waiting_jobs":         float64(s.Retrying),
		"job_duration_seconds_count": float64(s.Completed + s.Retries),
		"job_wait_seconds_count":     float64(s.Completed + s.Retries),
	}
	for _, r := range []workpool.DropReason{workpool.ReasonQueueFull, workpool.ReasonClosed,
		workpool.ReasonEvicted, workpool.ReasonShutdown, workpool.ReasonCanceled} {
		out["dropped_jobs_total{"+r.String()+"}"] = float64(drops[r.String()])
	}
	return out
}

// TestPrometheusConcurrent checks, under the race detector, that after a
// concurrent workload raced by scrapes and a shutdown, every metric equals
// the Stats field it mirrors and the drops by reason are those the callers
// and OnDrop saw; with retries too.
func TestPrometheusConcurrent(t *testing.T) {
	retry := workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond})
	for _, tc := range []struct {
		name   string
		policy workpool.DropPolicy
		retry  bool
	}{
		{"DropNewest", workpool.DropNewest, false},
		{"DropOldest", workpool.DropOldest, false},
		{"DropNewest with retries", workpool.DropNewest, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy := tc.policy
			const submitters, perSubmitter = 4, 1500
			reg := prometheus.NewPedanticRegistry()
			var mu sync.Mutex
			drops := map[string]uint64{}
			count := func(reason string) {
				mu.Lock()
				drops[reason]++
				mu.Unlock()
			}
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			opts := []workpool.Option{workpool.WithWorkers(3), workpool.WithQueueSize(8), workpool.WithDropPolicy(policy)}
			if tc.retry {
				opts = append(opts, retry)
			}
			p := newPool(t, func(ctx context.Context, n int) error {
				switch n % 7 {
				case 1: // fails once, then succeeds if retried
					if workpool.Attempt(ctx) == 1 {
						return errors.New("failed once")
					}
				case 3:
					return errors.New("failed")
				case 5:
					panic(n) // not retried
				}
				return nil
			}, append(opts,
				workpool.WithMetrics(newMetrics(t, reg, workpool.PrometheusOptions{})),
				workpool.OnDrop(func(n int, err error) {
					if errors.Is(err, workpool.ErrQueueFull) {
						count("evicted")
					} else {
						t.Errorf("OnDrop(%d, %v); want only evictions", n, err)
					}
				}))...)
			p.Start()

			stopScraping := make(chan struct{})
			scraped := make(chan struct{})
			go func() {
				defer close(scraped)
				for {
					select {
					case <-stopScraping:
						return
					default:
					}
					if _, err := reg.Gather(); err != nil {
						t.Errorf("Gather during the workload: %v", err)
						return
					}
				}
			}()

			var wg sync.WaitGroup
			var accepted atomic.Int64
			halfway := make(chan struct{})
			var once sync.Once
			for g := range submitters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perSubmitter {
						if i == perSubmitter/2 {
							once.Do(func() { close(halfway) })
						}
						var err error
						switch i % 3 {
						case 0:
							err = p.Submit(g*perSubmitter + i)
						case 1:
							err = p.SubmitWait(context.Background(), g*perSubmitter+i)
						case 2:
							err = p.SubmitWait(canceled, g*perSubmitter+i)
						}
						switch {
						case err == nil:
							accepted.Add(1)
						case errors.Is(err, workpool.ErrQueueFull):
							count("queue_full")
						case errors.Is(err, workpool.ErrClosed):
							count("closed")
						case errors.Is(err, context.Canceled):
							count("canceled")
						default:
							t.Errorf("submit: %v", err)
						}
					}
				}()
			}
			<-halfway
			if policy == workpool.DropNewest {
				shutdown(t, p) // races the submitters
				wg.Wait()
			} else {
				// Not raced under DropOldest: an eviction whose OnDrop
				// returns after the last worker exited does not wake
				// Shutdown, which then waits for its deadline (a core bug,
				// reported; Submit's eviction path does not signal).
				wg.Wait()
				shutdown(t, p)
			}
			close(stopScraping)
			<-scraped

			s := p.Stats()
			if s.Submitted != uint64(accepted.Load()) || s.Queued != 0 || s.Active != 0 {
				t.Errorf("Stats = %+v; want Submitted %d, nothing queued or active", s, accepted.Load())
			}
			var sum uint64
			for _, n := range drops {
				sum += n
			}
			if sum != s.Rejected+s.Dropped {
				t.Errorf("drops by reason sum to %d; want Rejected + Dropped = %d", sum, s.Rejected+s.Dropped)
			}
			if tc.retry && (s.Retries == 0 || s.Retrying != 0) {
				t.Errorf("Stats = %+v; want some Retries and, after Shutdown, none Retrying", s)
			}
			if diff := cmp.Diff(wantScrape(s, drops), scrape(t, reg)); diff != "" {
				t.Errorf("scrape at rest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrometheusRegistration(t *testing.T) {
	t.Run("same names twice", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		newMetrics(t, reg, seedOpts("email"))
		_, err := workpool.NewPrometheusMetrics(reg, seedOpts("email"))
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			t.Fatalf("second NewPrometheusMetrics = %v; want an AlreadyRegisteredError", err)
		}
		if !strings.HasPrefix(err.Error(), "workpool: ") {
			t.Errorf("error %q lacks the workpool: prefix", err)
		}
	})
	t.Run("no label to tell pools apart", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		newMetrics(t, reg, workpool.PrometheusOptions{})
		if _, err := workpool.NewPrometheusMetrics(reg, workpool.PrometheusOptions{}); err == nil {
			t.Fatal("second unlabelled NewPrometheusMetrics = nil; want an error")
		}
	})
	t.Run("other labels, same registry", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		newMetrics(t, reg, seedOpts("email"))
		newMetrics(t, reg, seedOpts("sms"))
	})
	t.Run("global registry untouched", func(t *testing.T) {
		before, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		newMetrics(t, prometheus.NewRegistry(), seedOpts("email"))
		after, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Errorf("default registry has %d families, had %d", len(after), len(before))
		}
	})
}

func TestPrometheusOptionErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	tests := []struct {
		name string
		reg  prometheus.Registerer
		opts workpool.PrometheusOptions
		want string
	}{
		{"nil registerer", nil, workpool.PrometheusOptions{}, "registerer is nil"},
		{"duration buckets out of order", reg, workpool.PrometheusOptions{DurationBuckets: []float64{1, 0.5}},
			"DurationBuckets must be strictly increasing, got 0.5 after 1"},
		{"repeated wait bucket", reg, workpool.PrometheusOptions{WaitBuckets: []float64{1, 1}},
			"WaitBuckets must be strictly increasing"},
		{"reserved le", reg, workpool.PrometheusOptions{ConstLabels: prometheus.Labels{"le": "x"}},
			`const label "le" is reserved`},
		{"reserved reason", reg, workpool.PrometheusOptions{ConstLabels: prometheus.Labels{"reason": "x"}},
			`const label "reason" is reserved`},
		{"invalid name", reg, workpool.PrometheusOptions{Namespace: "\xff"}, "workpool: registering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := workpool.NewPrometheusMetrics(tt.reg, tt.opts)
			if err == nil || !strings.HasPrefix(err.Error(), "workpool: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewPrometheusMetrics = %v, %v; want an error containing %q", m, err, tt.want)
			}
		})
	}
}

func TestPrometheusCustomBuckets(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	buckets := []float64{1, 2}
	m := newMetrics(t, reg, workpool.PrometheusOptions{DurationBuckets: buckets, WaitBuckets: []float64{3}})
	buckets[0] = 100 // the adapter keeps its own copy
	m.JobFinished(1500*time.Millisecond, workpool.OutcomeSuccess)
	m.JobStarted(0)
	want := `
# HELP job_duration_seconds How long each finished attempt's handler ran.
# TYPE job_duration_seconds histogram
job_duration_seconds_bucket{le="1"} 0
job_duration_seconds_bucket{le="2"} 1
job_duration_seconds_bucket{le="+Inf"} 1
job_duration_seconds_sum 1.5
job_duration_seconds_count 1
# HELP job_wait_seconds How long each started attempt waited since its job was accepted, or its retry fell due.
# TYPE job_wait_seconds histogram
job_wait_seconds_bucket{le="3"} 1
job_wait_seconds_bucket{le="+Inf"} 1
job_wait_seconds_sum 0
job_wait_seconds_count 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "job_duration_seconds", "job_wait_seconds"); err != nil {
		t.Error(err)
	}
}

func TestPrometheusOneAdapterPerPool(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(t, reg, seedOpts("email"))
	h := func(context.Context, int) error { return nil }
	first := newPool(t, h, workpool.WithMetrics(m))
	second, err := workpool.New(h, workpool.WithMetrics(m))
	if err == nil || !strings.Contains(err.Error(), "already attached to a pool") {
		t.Fatalf("New with an adapter already in use = %v, %v; want an error saying so", second, err)
	}
	// The first pool still reports alone.
	first.Start()
	wantErr(t, "Submit", first.Submit(1), nil)
	shutdown(t, first)
	if got := scrape(t, reg)["notification_worker_pool_submitted_jobs_total"]; got != 1 {
		t.Errorf("submitted_jobs_total = %v; want 1", got)
	}
}

func TestPrometheusCollectBeforeBind(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(t, reg, workpool.PrometheusOptions{Namespace: "ns"})
	m.JobRejected(workpool.ReasonQueueFull) // events before binding count too
	want := `
# HELP ns_dropped_jobs_total Jobs that will not run: submissions refused and accepted jobs dropped, by reason.
# TYPE ns_dropped_jobs_total counter
ns_dropped_jobs_total{reason="canceled"} 0
ns_dropped_jobs_total{reason="closed"} 0
ns_dropped_jobs_total{reason="evicted"} 0
ns_dropped_jobs_total{reason="queue_full"} 1
ns_dropped_jobs_total{reason="shutdown"} 0
# HELP ns_queue_depth Jobs accepted and waiting for a worker.
# TYPE ns_queue_depth gauge
ns_queue_depth 0
# HELP ns_workers Configured number of workers.
# TYPE ns_workers gauge
ns_workers 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ns_dropped_jobs_total", "ns_queue_depth", "ns_workers"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m); n != 17 {
		t.Errorf("CollectAndCount = %d; want 17 (9 from Stats, 5 reasons, retries, 2 histograms)", n)
	}
	if err := m.Bind(nil); err == nil {
		t.Error("Bind(nil) = nil; want an error")
	}
}

func TestPrometheusLint(t *testing.T) {
	m := newMetrics(t, prometheus.NewRegistry(), seedOpts("email"))
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestPrometheusRetries runs, on synctest's clock, jobs that fail twice and
// then succeed, jobs that fail every attempt, and a job still waiting for
// its retry when Shutdown's deadline passes. At each step the pool is at
// rest; the exposition must show the retries and the jobs waiting, and every
// metric must equal the Stats field it mirrors.
func TestPrometheusRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const flaky, doomed = 100, 200 // jobs from flaky on fail twice; from doomed on, always
		reg := prometheus.NewPedanticRegistry()
		m := newMetrics(t, reg, workpool.PrometheusOptions{ConstLabels: prometheus.Labels{"pool": "email"}})
		p := startPool(t, func(ctx context.Context, n int) error {
			if n >= doomed || n >= flaky && workpool.Attempt(ctx) < 3 {
				return errTransient
			}
			return nil
		}, workpool.WithWorkers(2), workpool.WithMetrics(m), workpool.WithRetry(workpool.RetryPolicy{
			MaxAttempts: 3, InitialBackoff: time.Minute, // waits 1m, then 2m
		}))

		check := func(step string, want workpool.Stats, drops map[string]uint64) {
			t.Helper()
			synctest.Wait() // every worker parked, every retry on its timer
			s := p.Stats()
			want.Workers, want.QueueCapacity = s.Workers, s.QueueCapacity
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("%s: Stats (-want +got):\n%s", step, diff)
			}
			text := fmt.Sprintf(`
# HELP retries_total Retries scheduled: attempts beyond each job's first.
# TYPE retries_total counter
retries_total{pool="email"} %d
# HELP retry_waiting_jobs Jobs whose attempt failed, waiting for their next attempt to start.
# TYPE retry_waiting_jobs gauge
retry_waiting_jobs{pool="email"} %d
`, want.Retries, want.Retrying)
			if err := testutil.CollectAndCompare(m, strings.NewReader(text), "retries_total", "retry_waiting_jobs"); err != nil {
				t.Errorf("%s: %v", step, err)
			}
			if diff := cmp.Diff(wantScrape(s, drops), scrape(t, reg)); diff != "" {
				t.Errorf("%s: scrape (-want +got):\n%s", step, diff)
			}
		}

		for _, n := range []int{0, flaky, flaky + 1, flaky + 2, doomed, doomed + 1} {
			wantErr(t, "Submit", p.Submit(n), nil)
		}
		check("after the first attempts", workpool.Stats{Submitted: 6, Completed: 1, Retrying: 5, Retries: 5}, nil)
		time.Sleep(time.Minute + time.Second)
		check("after the second attempts", workpool.Stats{Submitted: 6, Completed: 1, Retrying: 5, Retries: 10}, nil)
		time.Sleep(2 * time.Minute)
		check("after the third attempts", workpool.Stats{Submitted: 6, Completed: 6, Failed: 2, Retries: 10}, nil)

		// A retry due after Shutdown's deadline: the job is dropped, and its
		// retry stays counted.
		wantErr(t, "Submit", p.Submit(doomed+2), nil)
		check("waiting at shutdown", workpool.Stats{Submitted: 7, Completed: 6, Failed: 2, Retrying: 1, Retries: 11}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		wantErr(t, "Shutdown before the retry is due", p.Shutdown(ctx), context.DeadlineExceeded)
		check("after shutdown", workpool.Stats{Submitted: 7, Completed: 6, Failed: 2, Dropped: 1, Retries: 11},
			map[string]uint64{"shutdown": 1})
	})
}

// TestPrometheusRetryEventsUnbound calls the RetryMetrics methods on an
// adapter that no pool uses, concurrently: retries count, and the gauge,
// read from the (absent) pool, stays 0 however many RetryEnded calls come.
func TestPrometheusRetryEventsUnbound(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(t, reg, workpool.PrometheusOptions{})
	var rm workpool.RetryMetrics = m
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				rm.JobRetried(time.Second)
				rm.RetryEnded()
				rm.RetryEnded()
			}
		}()
	}
	wg.Wait()
	want := `
# HELP retries_total Retries scheduled: attempts beyond each job's first.
# TYPE retries_total counter
retries_total 400
# HELP retry_waiting_jobs Jobs whose attempt failed, waiting for their next attempt to start.
# TYPE retry_waiting_jobs gauge
retry_waiting_jobs 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "retries_total", "retry_waiting_jobs"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(m, "retries_total", "retry_waiting_jobs"); err != nil || len(problems) > 0 {
		t.Errorf("CollectAndLint = %v, %v; want no problems", problems, err)
	}
}
