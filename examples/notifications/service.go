package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/workpool-go/workpool"
)

// serve runs the service until ctx ends, then shuts down in order: the HTTP
// server first, so no new notification is accepted, then the pool, which
// sends what is queued within the configured shutdown timeout. It prints the
// final statistics to stdout, and returns an error if serving failed or the
// pool had to abandon jobs.
func serve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	cfg, err := workpool.ConfigFromEnv("WORKER_POOL")
	if err != nil {
		return fmt.Errorf("pool configuration: %w", err)
	}
	reg, metrics, err := newMetrics(o.poolName)
	if err != nil {
		return err
	}
	var drops dropTally
	pool, err := newPool(o, cfg, metrics, logger, &drops)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if o.onListen != nil {
		o.onListen(ln.Addr())
	}
	srv := newServer(routes(pool, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), logger), logger)

	pool.Start()
	logger.Info("serving", "addr", ln.Addr().String(), "workers", cfg.MaxWorkers,
		"queue_size", cfg.QueueSize, "drop_policy", cfg.DropPolicy)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done() // a signal, or the server failed
		logger.Info("shutting down")
		return shutdown(context.WithoutCancel(ctx), srv, pool, o.httpShutdown,
			time.Duration(cfg.ShutdownTimeoutSeconds)*time.Second)
	})
	err = g.Wait()

	printSummary(stdout, pool.Stats(), drops.snapshot())
	return err
}

// newPool returns the pool that sends notifications, configured by cfg,
// reporting to metrics and logger, and counting in drops every accepted
// notification it will not send.
func newPool(o options, cfg workpool.Config, metrics workpool.Metrics, logger *slog.Logger,
	drops *dropTally) (*workpool.Pool[Notification], error) {
	sender := o.sender
	if sender == nil {
		sender = newSimulatedSender(o.seed, o.latency, o.failRate, o.panicRate)
	}
	pool, err := workpool.New(sender.Send,
		workpool.WithConfig(cfg),
		workpool.WithMetrics(metrics),
		workpool.WithLogger(logger.With("pool", o.poolName)),
		workpool.OnDrop(func(n Notification, reason error) {
			// A real service would put n back on a durable queue here.
			drops.add(reason)
			// One line per notification at Debug; the pool logs the counts
			// per reason once, and the summary prints them.
			logger.Debug("notification not sent", "id", n.ID, "user", n.User, "reason", dropReason(reason), "err", reason)
		}),
		// No WithContext(ctx): a signal must not stop the pool hard before
		// the HTTP server has stopped and the queue has drained.
	)
	if err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	return pool, nil
}

// newServer returns an HTTP server with timeouts, so a slow or idle client
// cannot hold a connection forever, logging its errors to logger.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// shutdown stops the HTTP server, then drains the pool, each within its own
// timeout. ctx must not be the cancelled signal context.
func shutdown(ctx context.Context, srv *http.Server, pool *workpool.Pool[Notification],
	httpTimeout, poolTimeout time.Duration) error {
	var errs []error
	hctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	if err := srv.Shutdown(hctx); err != nil {
		// Requests still running: cut them off. A handler only submits, so
		// this is rare; a job it submitted is still in the pool.
		errs = append(errs, fmt.Errorf("http shutdown: %w", err), srv.Close())
	}

	pctx, cancel := context.WithTimeout(ctx, poolTimeout)
	defer cancel()
	if err := pool.Shutdown(pctx); err != nil {
		errs = append(errs, fmt.Errorf("pool shutdown: some notifications were not sent: %w", err))
	}
	return errors.Join(errs...)
}

// newMetrics returns the service's own registry (never the global one) with
// the Go runtime's and the process's metrics, and the pool's adapter
// registered on it. deploy/ assumes its names: notification_worker_pool_*,
// with a "pool" label.
func newMetrics(poolName string) (*prometheus.Registry, *workpool.PrometheusMetrics, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	metrics, err := workpool.NewPrometheusMetrics(reg, workpool.PrometheusOptions{
		Namespace:   "notification",
		Subsystem:   "worker_pool",
		ConstLabels: prometheus.Labels{"pool": poolName},
	})
	if err != nil {
		return nil, nil, err
	}
	return reg, metrics, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
