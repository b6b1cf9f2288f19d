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
// server first, so no new notification is accepted, then the pools, which
// send what is queued or waiting for a retry within the configured shutdown
// timeout. It prints the final statistics to stdout, and returns an error
// if serving failed or a pool had to abandon jobs.
func serve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	cfgs, err := loadConfigs()
	if err != nil {
		return fmt.Errorf("pool configuration: %w", err)
	}
	reg, err := newRegistry()
	if err != nil {
		return err
	}
	sender := o.sender
	if sender == nil {
		sender = newSimulatedSender(o.seed, o.latency, o.failRate, o.panicRate, o.invalidRate)
	}
	var drops dropTally
	pools, err := newChannelPools(o.poolName, cfgs, sender, reg, logger, &drops)
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
	srv := newServer(routes(pools, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), logger), logger)

	pools.Start()
	logger.Info("serving", "addr", ln.Addr().String())
	for _, c := range pools.list {
		logger.Info("channel", "channel", c.name, "workers", c.cfg.MaxWorkers, "queue_size", c.cfg.QueueSize,
			"drop_policy", c.cfg.DropPolicy, "max_attempts", c.cfg.MaxAttempts,
			"rate_limit", c.cfg.RateLimit, "rate_burst", c.cfg.RateBurst)
	}
	// Every channel has the same shutdown timeout: only the rate limit
	// differs by channel.
	shutdownTimeout := time.Duration(cfgs[channels[0].name].ShutdownTimeoutSeconds) * time.Second

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
		return shutdown(context.WithoutCancel(ctx), srv, pools, o.httpShutdown, shutdownTimeout)
	})
	err = g.Wait()

	printSummary(stdout, pools.stats(), drops.snapshot())
	return err
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

// shutdown stops the HTTP server, then drains the pools, each within its
// own timeout. ctx must not be the cancelled signal context.
func shutdown(ctx context.Context, srv *http.Server, pools *channelPools,
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
	if err := pools.Shutdown(pctx); err != nil {
		errs = append(errs, fmt.Errorf("pool shutdown: some notifications were not sent: %w", err))
	}
	return errors.Join(errs...)
}

// newMetrics returns the service's registry with one pool's adapter
// registered on it, labelled poolName: what serve builds, for one channel.
// The deploy kit's tests read the metric names from it.
func newMetrics(poolName string) (*prometheus.Registry, *workpool.PrometheusMetrics, error) {
	reg, err := newRegistry()
	if err != nil {
		return nil, nil, err
	}
	metrics, err := newPoolMetrics(reg, poolName)
	if err != nil {
		return nil, nil, err
	}
	return reg, metrics, nil
}

// newRegistry returns the service's own registry (never the global one)
// with the Go runtime's and the process's metrics.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// newPoolMetrics registers on reg the adapter of one pool, told apart from
// the others by its "pool" label. deploy/ assumes its names:
// notification_worker_pool_*, with a "pool" label.
func newPoolMetrics(reg prometheus.Registerer, poolName string) (*workpool.PrometheusMetrics, error) {
	return workpool.NewPrometheusMetrics(reg, workpool.PrometheusOptions{
		Namespace:   "notification",
		Subsystem:   "worker_pool",
		ConstLabels: prometheus.Labels{"pool": poolName},
	})
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
