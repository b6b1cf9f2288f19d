package workpool

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Config is a pool's configuration as plain values, for an application's
// config file or environment. Embed it in your own config struct (it carries
// mapstructure, yaml and json tags), load it with [ConfigFromEnv], check it
// with [Config.Validate], and apply it with [WithConfig].
//
// The zero Config is not valid: start from [DefaultConfig] so that keys
// missing from a config file keep their defaults.
type Config struct {
	// MaxWorkers is how many handlers run at once: 1 to [MaxWorkers].
	// Default 10. Environment: <prefix>_MAX_WORKERS.
	MaxWorkers int `mapstructure:"MAX_WORKERS" yaml:"max_workers" json:"max_workers"`

	// QueueSize is how many accepted jobs may wait for a worker: 1 to
	// [MaxQueueSize]. Default 1000. Environment: <prefix>_QUEUE_SIZE.
	QueueSize int `mapstructure:"QUEUE_SIZE" yaml:"queue_size" json:"queue_size"`

	// ShutdownTimeoutSeconds bounds how long [Pool.Shutdown] drains before
	// it stops hard; it must be positive. Default 30. Environment:
	// <prefix>_SHUTDOWN_TIMEOUT_SECONDS.
	ShutdownTimeoutSeconds int `mapstructure:"SHUTDOWN_TIMEOUT_SECONDS" yaml:"shutdown_timeout_seconds" json:"shutdown_timeout_seconds"`

	// JobTimeoutSeconds is the deadline of each job's context, counted from
	// when the job starts; 0 disables it, and it must not be negative.
	// Default 30. Environment: <prefix>_JOB_TIMEOUT_SECONDS.
	JobTimeoutSeconds int `mapstructure:"JOB_TIMEOUT_SECONDS" yaml:"job_timeout_seconds" json:"job_timeout_seconds"`

	// DropPolicy is what Submit does when the queue is full: "newest"
	// refuses the new job ([DropNewest]) and "oldest" evicts the oldest
	// queued one ([DropOldest]). Case does not matter, and empty means
	// "newest". Default "newest". Environment: <prefix>_DROP_POLICY.
	DropPolicy string `mapstructure:"DROP_POLICY" yaml:"drop_policy" json:"drop_policy"`

	// The retry policy ([WithRetry], [RetryPolicy]). As in RetryPolicy, 0
	// stands for a field's default, so a Config written out before these
	// fields existed means what it meant then: no retry.

	// MaxAttempts is how many times a job may run in all, the first time
	// included: 0 or 1 means no retry; at most 2147483647. Default 1.
	// Environment: <prefix>_MAX_ATTEMPTS.
	MaxAttempts int `mapstructure:"MAX_ATTEMPTS" yaml:"max_attempts" json:"max_attempts"`

	// RetryInitialBackoffMillis is the wait before a job's second attempt,
	// in milliseconds; 0 means the default. Default 100. Environment:
	// <prefix>_RETRY_INITIAL_BACKOFF_MS.
	RetryInitialBackoffMillis int `mapstructure:"RETRY_INITIAL_BACKOFF_MS" yaml:"retry_initial_backoff_ms" json:"retry_initial_backoff_ms"`

	// RetryMaxBackoffMillis caps the wait between attempts, in
	// milliseconds; it must be at least the initial backoff, and 0 means
	// 10000 or the initial backoff if that is larger. Default 10000.
	// Environment: <prefix>_RETRY_MAX_BACKOFF_MS.
	RetryMaxBackoffMillis int `mapstructure:"RETRY_MAX_BACKOFF_MS" yaml:"retry_max_backoff_ms" json:"retry_max_backoff_ms"`

	// RetryMultiplier is how much the wait grows per attempt: at least 1
	// and finite, or 0 for the default. Default 2. Environment:
	// <prefix>_RETRY_MULTIPLIER.
	RetryMultiplier float64 `mapstructure:"RETRY_MULTIPLIER" yaml:"retry_multiplier" json:"retry_multiplier"`

	// RetryJitter is the largest fraction of each wait taken off at random,
	// 0 to 1. Default 0: exact waits. Environment: <prefix>_RETRY_JITTER.
	RetryJitter float64 `mapstructure:"RETRY_JITTER" yaml:"retry_jitter" json:"retry_jitter"`

	// RetryPanics retries attempts that panicked too. Default false.
	// Environment: <prefix>_RETRY_PANICS, read by [strconv.ParseBool].
	RetryPanics bool `mapstructure:"RETRY_PANICS" yaml:"retry_panics" json:"retry_panics"`

	// RateLimit caps how fast jobs start, in jobs per second on average
	// ([WithRateLimit]); 0 means no limit, and it must be finite. Default 0.
	// Environment: <prefix>_RATE_LIMIT.
	RateLimit float64 `mapstructure:"RATE_LIMIT" yaml:"rate_limit" json:"rate_limit"`

	// RateBurst is how many jobs may start at once, ahead of RateLimit's
	// pace; 0 means 1, and it is ignored without a RateLimit. At most
	// 2147483647. Default 1. Environment: <prefix>_RATE_BURST.
	RateBurst int `mapstructure:"RATE_BURST" yaml:"rate_burst" json:"rate_burst"`
}

// Bounds of Config's integer fields: maxSeconds and maxMillis are the
// largest numbers of seconds and milliseconds that both an int and a
// time.Duration hold; maxCount bounds counts the pool allocates nothing
// for, the same on every platform.
const (
	maxSeconds = min(math.MaxInt64/int64(time.Second), math.MaxInt)
	maxMillis  = min(math.MaxInt64/int64(time.Millisecond), math.MaxInt)
	maxCount   = math.MaxInt32
)

// DefaultConfig returns the configuration [New] uses when no option is
// given: 10 workers, a queue of 1000, 30s shutdown and job timeouts, the
// "newest" drop policy, no retry (one attempt, with the retry fields at
// [RetryPolicy]'s defaults) and no rate limit.
func DefaultConfig() Config {
	return Config{
		MaxWorkers:                DefaultWorkers,
		QueueSize:                 DefaultQueueSize,
		ShutdownTimeoutSeconds:    int(DefaultShutdownTimeout / time.Second),
		JobTimeoutSeconds:         int(DefaultJobTimeout / time.Second),
		DropPolicy:                DropNewest.String(),
		MaxAttempts:               1,
		RetryInitialBackoffMillis: int(DefaultRetryInitialBackoff / time.Millisecond),
		RetryMaxBackoffMillis:     int(DefaultRetryMaxBackoff / time.Millisecond),
		RetryMultiplier:           DefaultRetryMultiplier,
		RateBurst:                 1,
	}
}

// Validate reports every field out of range, joined with [errors.Join], each
// naming the field and its value:
//
//	workpool: queue size must be positive and at most 1073741824, got 0
//
// It accepts exactly the configurations [New] accepts through [WithConfig].
func (c Config) Validate() error {
	var errs []error
	for _, f := range c.intFields() {
		if !f.ok(int64(*f.ptr)) {
			errs = append(errs, fmt.Errorf("workpool: %s %s, got %d", f.label, f.rule(), *f.ptr))
		}
	}
	if _, err := c.dropPolicy(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range c.floatFields() {
		if !f.ok(*f.ptr) {
			errs = append(errs, fmt.Errorf("workpool: %s %s, got %v", f.label, f.rule, *f.ptr))
		}
	}
	if c.RetryInitialBackoffMillis >= 0 && c.RetryMaxBackoffMillis > 0 && !c.backoffsInOrder() {
		errs = append(errs, fmt.Errorf("workpool: retry max backoff ms must be at least the initial backoff, %d, got %d",
			c.initialBackoffMillis(), c.RetryMaxBackoffMillis))
	}
	return errors.Join(errs...)
}

// WithConfig applies every field of c: it does what [WithWorkers],
// [WithQueueSize], [WithShutdownTimeout], [WithJobTimeout],
// [WithDropPolicy], [WithRetry] and [WithRateLimit] would do with c's
// values (a RateLimit of 0 means no limit, even if an earlier WithRateLimit
// set one), and touches no other setting.
//
// Options apply in order, so an option after WithConfig overrides the field
// it sets, and WithConfig overrides the same settings given by options
// before it:
//
//	New(h, WithConfig(c), WithWorkers(4)) // 4 workers, the rest from c
//	New(h, WithWorkers(4), WithConfig(c)) // c.MaxWorkers workers
//
// An invalid c applies nothing: New then fails with the error c.Validate
// returns, even if later options set the fields c got wrong.
func WithConfig(c Config) Option {
	return func(s *settings) {
		if err := c.Validate(); err != nil {
			s.configErr = err
			return
		}
		policy, _ := c.dropPolicy() // valid: checked above
		s.configErr = nil
		s.workers = c.MaxWorkers
		s.queueSize = c.QueueSize
		s.shutdownTimeout = time.Duration(c.ShutdownTimeoutSeconds) * time.Second
		s.jobTimeout = time.Duration(c.JobTimeoutSeconds) * time.Second
		s.policy = policy
		s.retry = RetryPolicy{
			MaxAttempts:    c.MaxAttempts,
			InitialBackoff: time.Duration(c.RetryInitialBackoffMillis) * time.Millisecond,
			MaxBackoff:     time.Duration(c.RetryMaxBackoffMillis) * time.Millisecond,
			Multiplier:     c.RetryMultiplier,
			Jitter:         c.RetryJitter,
			RetryPanics:    c.RetryPanics,
		}
		s.rateLimit, s.rateBurst, s.rateSet = rate.Inf, 0, false
		if c.RateLimit > 0 {
			s.rateLimit, s.rateBurst, s.rateSet = rate.Limit(c.RateLimit), max(c.RateBurst, 1), true
		}
	}
}

// ParseDropPolicy returns the drop policy named by s: "newest" for
// [DropNewest] or "oldest" for [DropOldest], in any case. It is the inverse
// of [DropPolicy.String].
func ParseDropPolicy(s string) (DropPolicy, error) {
	for _, p := range [...]DropPolicy{DropNewest, DropOldest} {
		if strings.EqualFold(s, p.String()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf(`workpool: unknown drop policy %q, want "newest" or "oldest"`, s)
}

// MarshalText returns the policy's name, "newest" or "oldest", so a
// DropPolicy reads well in JSON, YAML and flag.TextVar. It fails for a value
// that is neither.
func (d DropPolicy) MarshalText() ([]byte, error) {
	if d != DropNewest && d != DropOldest {
		return nil, fmt.Errorf("workpool: cannot marshal unknown drop policy %v", d)
	}
	return []byte(d.String()), nil
}

// UnmarshalText sets d from its name, as [ParseDropPolicy] reads it.
func (d *DropPolicy) UnmarshalText(text []byte) error {
	p, err := ParseDropPolicy(string(text))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// intField describes one integer field of a Config: where it is, its
// environment variable's suffix, its name in messages and its range.
type intField struct {
	ptr    *int
	key    string
	label  string
	lo, hi int64
	zero   string // what 0 means, if lo is 0
}

// intFields returns c's integer fields, pointing into c.
func (c *Config) intFields() []intField {
	return []intField{
		{&c.MaxWorkers, "MAX_WORKERS", "max workers", 1, MaxWorkers, ""},
		{&c.QueueSize, "QUEUE_SIZE", "queue size", 1, MaxQueueSize, ""},
		{&c.ShutdownTimeoutSeconds, "SHUTDOWN_TIMEOUT_SECONDS", "shutdown timeout seconds", 1, maxSeconds, ""},
		{&c.JobTimeoutSeconds, "JOB_TIMEOUT_SECONDS", "job timeout seconds", 0, maxSeconds, "none"},
		{&c.MaxAttempts, "MAX_ATTEMPTS", "max attempts", 0, maxCount, "no retry"},
		{&c.RetryInitialBackoffMillis, "RETRY_INITIAL_BACKOFF_MS", "retry initial backoff ms", 0, maxMillis, fmt.Sprintf("the default, %d", DefaultRetryInitialBackoff/time.Millisecond)},
		{&c.RetryMaxBackoffMillis, "RETRY_MAX_BACKOFF_MS", "retry max backoff ms", 0, maxMillis, fmt.Sprintf("the default, %d", DefaultRetryMaxBackoff/time.Millisecond)},
		{&c.RateBurst, "RATE_BURST", "rate burst", 0, maxCount, "the default, 1"},
	}
}

func (f intField) ok(n int64) bool {
	return f.lo <= n && n <= f.hi
}

// rule says what range f accepts, to follow its label in a message.
func (f intField) rule() string {
	if f.lo == 0 {
		return fmt.Sprintf("must be 0 (%s) or positive and at most %d", f.zero, f.hi)
	}
	return fmt.Sprintf("must be positive and at most %d", f.hi)
}

// floatField describes one float64 field of a Config, as intField does.
type floatField struct {
	ptr   *float64
	key   string
	label string
	ok    func(float64) bool // false for NaN
	rule  string             // what ok accepts, to follow label
}

// floatFields returns c's float64 fields, pointing into c.
func (c *Config) floatFields() []floatField {
	finite := func(x float64) bool { return -math.MaxFloat64 <= x && x <= math.MaxFloat64 }
	return []floatField{
		{&c.RetryMultiplier, "RETRY_MULTIPLIER", "retry multiplier",
			func(x float64) bool { return x == 0 || x >= 1 && finite(x) }, fmt.Sprintf("must be 0 (the default, %g) or at least 1 and finite", DefaultRetryMultiplier)},
		{&c.RetryJitter, "RETRY_JITTER", "retry jitter",
			func(x float64) bool { return 0 <= x && x <= 1 }, "must be between 0 and 1"},
		{&c.RateLimit, "RATE_LIMIT", "rate limit",
			func(x float64) bool { return x >= 0 && finite(x) }, "must be 0 (no limit) or positive and finite"},
	}
}

// initialBackoffMillis returns the initial backoff c means, in milliseconds.
func (c Config) initialBackoffMillis() int {
	if c.RetryInitialBackoffMillis == 0 {
		return int(DefaultRetryInitialBackoff / time.Millisecond)
	}
	return c.RetryInitialBackoffMillis
}

// backoffsInOrder reports whether c's max backoff, if set, is at least its
// initial backoff.
func (c Config) backoffsInOrder() bool {
	return c.RetryMaxBackoffMillis == 0 || c.RetryMaxBackoffMillis >= c.initialBackoffMillis()
}

// defaultNote marks a value in a message that comes from DefaultConfig.
func defaultNote(set bool) string {
	if set {
		return ""
	}
	return " (its default)"
}

// dropPolicy parses c.DropPolicy; empty means DropNewest.
func (c Config) dropPolicy() (DropPolicy, error) {
	if c.DropPolicy == "" {
		return DropNewest, nil
	}
	return ParseDropPolicy(c.DropPolicy)
}
