// Command notifications is a small notification service built on workpool,
// the use case the library comes from: an HTTP endpoint accepts
// notifications, a bounded pool per channel (email, push, sms) sends them in
// the background within the channel provider's rate limit, retrying what
// failed for a passing reason, Prometheus scrapes the pools' metrics, and a
// SIGINT or SIGTERM shuts it all down without losing an accepted
// notification silently.
//
//	go run ./examples/notifications -addr 127.0.0.1:8080   # stop with Ctrl-C
//
// A SIGTERM sent to `go run` does not reach the program (the child keeps
// serving): to stop it with SIGTERM, as a process manager would, build it
// and signal the binary once it is serving:
//
//	go build -o /tmp/notifications ./examples/notifications
//	/tmp/notifications -addr 127.0.0.1:8080 &
//	kill -TERM %1   # later: it drains and prints its summary
//
//	curl -i -X POST localhost:8080/notify -d '{"user":"ada","channel":"email","message":"hi"}'
//	curl -s localhost:8080/metrics | grep notification_worker_pool_
//
// The pools are configured from the environment (see workpool.ConfigFromEnv),
// each channel's pool with the same settings: WORKER_POOL_MAX_WORKERS,
// WORKER_POOL_QUEUE_SIZE, WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS,
// WORKER_POOL_JOB_TIMEOUT_SECONDS, WORKER_POOL_DROP_POLICY, the retry policy
// (WORKER_POOL_MAX_ATTEMPTS, WORKER_POOL_RETRY_INITIAL_BACKOFF_MS,
// WORKER_POOL_RETRY_MAX_BACKOFF_MS, WORKER_POOL_RETRY_MULTIPLIER,
// WORKER_POOL_RETRY_JITTER, WORKER_POOL_RETRY_PANICS) and the rate limit
// (WORKER_POOL_RATE_LIMIT in notifications per second, WORKER_POOL_RATE_BURST).
// Where these are unset the service differs from the library's defaults: it
// makes 3 attempts, 200ms apart at first, with 20% jitter, and limits each
// channel to its provider's quota: email 50/s (bursts of 10), push 200/s
// (20), sms 10/s (2). A rate limit set in the environment applies to each
// channel separately. For example:
//
//	WORKER_POOL_MAX_ATTEMPTS=5 WORKER_POOL_RATE_LIMIT=20 go run ./examples/notifications
//
// A send that fails because the provider is unavailable is retried; one
// whose recipient the provider rejects is marked workpool.Permanent and is
// not. The final summary counts both, and the retries.
//
// Endpoints:
//
//	POST /notify   JSON {"user", "channel", "message"}: 202 accepted, 400 invalid,
//	               503 with Retry-After when the queue is full
//	GET  /metrics  Prometheus metrics: notification_worker_pool_*, with a pool
//	               label per channel ("notifications-email", ...), and the Go runtime's
//	GET  /healthz  200 while the pools accept work, 503 once they are shutting down
//
// Sending is simulated: each notification takes about -latency, fails with
// probability -fail-rate (retried), panics with probability -panic-rate (not
// retried: a bug) and is rejected for a bad recipient with probability
// -invalid-rate (always the same recipients; not retried), so the pools'
// retries and error and panic handling show up in the logs and metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h: the usage is printed.
	case err != nil:
		fmt.Fprintln(os.Stderr, "notifications:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx ends, shuts down and prints the final
// statistics to stdout. Logs go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, opts, stdout, stderr)
}

// options are the service's settings from its flags. The pools' own
// settings come from the environment.
type options struct {
	addr         string        // listen address
	poolName     string        // value of the "pool" label on the metrics
	httpShutdown time.Duration // longest wait for in-flight requests at shutdown
	logLevel     string

	// The simulated sender.
	seed        uint64 // 0: a random seed
	latency     time.Duration
	failRate    float64
	panicRate   float64
	invalidRate float64

	// sender replaces the simulated sender when not nil; tests use it.
	sender Sender
	// onListen, when not nil, is called with the bound address once the
	// listener is open, before serving starts; tests use it with port 0.
	onListen func(net.Addr)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("notifications", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address; port 0 picks a free port")
	fs.StringVar(&o.poolName, "pool", "notifications", `prefix of the "pool" label on the pools' metrics: <pool>-<channel>`)
	fs.DurationVar(&o.httpShutdown, "http-shutdown-timeout", 5*time.Second, "longest wait for in-flight HTTP requests at shutdown")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the simulated sender's randomness; 0 picks one")
	fs.DurationVar(&o.latency, "latency", 50*time.Millisecond, "mean simulated send latency")
	fs.Float64Var(&o.failRate, "fail-rate", 0.05, "probability that a simulated send fails for a passing reason (retried)")
	fs.Float64Var(&o.panicRate, "panic-rate", 0.001, "probability that a simulated send panics")
	fs.Float64Var(&o.invalidRate, "invalid-rate", 0.01, "share of recipients the simulated provider rejects (not retried)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case o.httpShutdown <= 0:
		return options{}, fmt.Errorf("-http-shutdown-timeout must be positive, got %v", o.httpShutdown)
	case o.latency < 0:
		return options{}, fmt.Errorf("-latency must not be negative, got %v", o.latency)
	case o.failRate < 0 || o.panicRate < 0 || o.failRate+o.panicRate > 1:
		return options{}, fmt.Errorf("-fail-rate (%v) and -panic-rate (%v) must be probabilities with a sum of at most 1",
			o.failRate, o.panicRate)
	case !(o.invalidRate >= 0 && o.invalidRate <= 1):
		return options{}, fmt.Errorf("-invalid-rate must be between 0 and 1, got %v", o.invalidRate)
	}
	return o, nil
}
