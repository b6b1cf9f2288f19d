package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/workpool-go/workpool"
)

// A pool exports its metrics to a registry of its own choosing, told apart
// from other pools by a const label. In a service, serve reg with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func ExampleNewPrometheusMetrics() {
	reg := prometheus.NewRegistry()
	metrics, err := workpool.NewPrometheusMetrics(reg, workpool.PrometheusOptions{
		Namespace:   "notification",
		Subsystem:   "worker_pool",
		ConstLabels: prometheus.Labels{"pool": "email"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, err := workpool.New(func(ctx context.Context, to string) error {
		if to == "" {
			return errors.New("no recipient")
		}
		return nil // send the email
	}, workpool.WithWorkers(2), workpool.WithMetrics(metrics))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool.Start()
	for _, to := range []string{"ada@example.com", "", "bob@example.com"} {
		if err := pool.Submit(to); err != nil {
			fmt.Println(err)
		}
	}
	if err := pool.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}

	families, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range families {
		switch mf.GetName() {
		case "notification_worker_pool_submitted_jobs_total",
			"notification_worker_pool_errors_total",
			"notification_worker_pool_queue_depth":
			if _, err := expfmt.MetricFamilyToText(os.Stdout, mf); err != nil {
				fmt.Println(err)
			}
		}
	}
	// Output:
	// # HELP notification_worker_pool_errors_total Finished jobs that failed: returned an error, panicked, timed out or called runtime.Goexit.
	// # TYPE notification_worker_pool_errors_total counter
	// notification_worker_pool_errors_total{pool="email"} 1
	// # HELP notification_worker_pool_queue_depth Jobs accepted and waiting for a worker.
	// # TYPE notification_worker_pool_queue_depth gauge
	// notification_worker_pool_queue_depth{pool="email"} 0
	// # HELP notification_worker_pool_submitted_jobs_total Jobs accepted by Submit or SubmitWait.
	// # TYPE notification_worker_pool_submitted_jobs_total counter
	// notification_worker_pool_submitted_jobs_total{pool="email"} 3
}
