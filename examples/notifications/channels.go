package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/workpool-go/workpool"
)

// envPrefix is the prefix of the pool settings' environment variables.
const envPrefix = "WORKER_POOL"

// channel is one way of reaching a user. Each has a pool of its own, so
// that a slow or rate-limited provider holds up only its own channel.
type channel struct {
	name string
	// The provider's quota: the pool's rate limit in notifications per
	// second, and the burst it allows, unless the environment sets them.
	rate  float64
	burst int
}

// channels are the service's channels, by name.
var channels = []channel{
	{name: "email", rate: 50, burst: 10},
	{name: "push", rate: 200, burst: 20},
	{name: "sms", rate: 10, burst: 2},
}

// channelNames returns the channels' names, for messages.
func channelNames() string {
	names := make([]string, len(channels))
	for i, ch := range channels {
		names[i] = ch.name
	}
	return strings.Join(names, ", ")
}

// loadConfigs returns each channel's pool settings: the environment's (see
// workpool.ConfigFromEnv), except that where a variable below is unset or
// empty the service's own default applies instead of the library's:
//
//	WORKER_POOL_MAX_ATTEMPTS              3 (the library's: 1, no retry)
//	WORKER_POOL_RETRY_INITIAL_BACKOFF_MS  200
//	WORKER_POOL_RETRY_JITTER              0.2
//	WORKER_POOL_RATE_LIMIT, _RATE_BURST   the channel's quota (see channels)
//
// The other settings (workers, queue size, ...) apply to each channel's pool.
// A variable that is set applies to every channel: WORKER_POOL_RATE_LIMIT=5
// limits each channel to 5 per second, separately.
func loadConfigs() (map[string]workpool.Config, error) {
	base, err := workpool.ConfigFromEnv(envPrefix)
	if err != nil {
		return nil, err
	}
	unset := func(key string) bool { return os.Getenv(envPrefix+"_"+key) == "" }
	if unset("MAX_ATTEMPTS") {
		base.MaxAttempts = 3
	}
	if unset("RETRY_INITIAL_BACKOFF_MS") {
		base.RetryInitialBackoffMillis = 200
	}
	if unset("RETRY_JITTER") {
		base.RetryJitter = 0.2
	}
	cfgs := make(map[string]workpool.Config, len(channels))
	for _, ch := range channels {
		cfg := base
		if unset("RATE_LIMIT") {
			cfg.RateLimit = ch.rate
		}
		if unset("RATE_BURST") {
			cfg.RateBurst = ch.burst
		}
		// A service default may not suit a variable that is set, such as a
		// max backoff below the default initial one.
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%w (with this service's defaults for unset variables)", err)
		}
		cfgs[ch.name] = cfg
	}
	return cfgs, nil
}

// channelPool is one channel's pool.
type channelPool struct {
	name string
	cfg  workpool.Config
	pool *workpool.Pool[Notification]
	// permanent counts the notifications that failed for good without a
	// retry, because the provider rejected their recipient.
	permanent atomic.Uint64
}

// channelPools routes each notification to its channel's pool.
type channelPools struct {
	list   []*channelPool // in the order of channels
	byName map[string]*channelPool
}

// newChannelPools returns a pool per channel, configured by cfgs, sending
// with sender. Each reports to its own Prometheus adapter on reg, with pool
// label "<poolName>-<channel>", logs to logger, and counts in drops every
// accepted notification it will not send.
func newChannelPools(poolName string, cfgs map[string]workpool.Config, sender Sender,
	reg prometheus.Registerer, logger *slog.Logger, drops *dropTally) (*channelPools, error) {
	cp := &channelPools{byName: map[string]*channelPool{}}
	for _, ch := range channels {
		c := &channelPool{name: ch.name, cfg: cfgs[ch.name]}
		label := poolName + "-" + ch.name
		metrics, err := newPoolMetrics(reg, label)
		if err != nil {
			return nil, err
		}
		log := logger.With("pool", label)
		c.pool, err = workpool.New(deliver(sender),
			workpool.WithConfig(c.cfg),
			workpool.WithMetrics(metrics),
			workpool.WithLogger(log),
			workpool.OnError(func(n Notification, err error) {
				// The pool has logged the failure at Warn already.
				if workpool.IsPermanent(err) {
					c.permanent.Add(1)
				}
			}),
			workpool.OnDrop(func(n Notification, reason error) {
				// A real service would put n back on a durable queue here.
				drops.add(reason)
				// One line per notification at Debug; the pool logs the
				// counts per reason once, and the summary prints them.
				log.Debug("notification not sent", "id", n.ID, "user", n.User, "reason", dropReason(reason), "err", reason)
			}),
			// No WithContext(ctx): a signal must not stop the pools hard
			// before the HTTP server has stopped and the queues have drained.
		)
		if err != nil {
			return nil, fmt.Errorf("%s pool: %w", ch.name, err)
		}
		cp.list = append(cp.list, c)
		cp.byName[ch.name] = c
	}
	return cp, nil
}

// deliver returns the pools' handler: it sends n, and marks as permanent
// the errors a retry cannot fix, so that the pool does not retry them.
// Other errors (a provider that is down, a timeout) are retried under the
// pool's retry policy.
func deliver(sender Sender) workpool.Handler[Notification] {
	return func(ctx context.Context, n Notification) error {
		err := sender.Send(ctx, n)
		if errors.Is(err, errInvalidRecipient) {
			return workpool.Permanent(err)
		}
		return err
	}
}

// Submit hands n to its channel's pool without blocking; it returns the
// pool's error (workpool.ErrQueueFull, workpool.ErrClosed).
func (cp *channelPools) Submit(n Notification) error {
	c, ok := cp.byName[n.Channel]
	if !ok {
		return fmt.Errorf("no pool for channel %q", n.Channel) // decodeNotification checks it
	}
	return c.pool.Submit(n)
}

// Start starts every pool.
func (cp *channelPools) Start() {
	for _, c := range cp.list {
		c.pool.Start()
	}
}

// IsRunning reports whether every pool accepts work.
func (cp *channelPools) IsRunning() bool {
	for _, c := range cp.list {
		if !c.pool.IsRunning() {
			return false
		}
	}
	return true
}

// Shutdown shuts the pools down at once, so they drain side by side within
// ctx, and returns their errors.
func (cp *channelPools) Shutdown(ctx context.Context) error {
	errs := make([]error, len(cp.list))
	var wg sync.WaitGroup
	for i, c := range cp.list {
		wg.Go(func() {
			if err := c.pool.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stats returns each channel's statistics, in the order of channels.
func (cp *channelPools) stats() []channelStats {
	out := make([]channelStats, len(cp.list))
	for i, c := range cp.list {
		out[i] = channelStats{name: c.name, Stats: c.pool.Stats(), permanent: c.permanent.Load()}
	}
	return out
}
