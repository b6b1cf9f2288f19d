package workpool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
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
}

// maxSeconds is the largest number of seconds that both an int and a
// time.Duration hold.
const maxSeconds = min(math.MaxInt64/int64(time.Second), math.MaxInt)

// DefaultConfig returns the configuration [New] uses when no option is
// given: 10 workers, a queue of 1000, 30s shutdown and job timeouts, and the
// "newest" drop policy.
func DefaultConfig() Config {
	return Config{
		MaxWorkers:             DefaultWorkers,
		QueueSize:              DefaultQueueSize,
		ShutdownTimeoutSeconds: int(DefaultShutdownTimeout / time.Second),
		JobTimeoutSeconds:      int(DefaultJobTimeout / time.Second),
		DropPolicy:             DropNewest.String(),
	}
}

// ConfigFromEnv returns [DefaultConfig] with each field replaced by its
// environment variable, if that is set and not empty. With prefix
// "WORKER_POOL" it reads WORKER_POOL_MAX_WORKERS, WORKER_POOL_QUEUE_SIZE,
// WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS, WORKER_POOL_JOB_TIMEOUT_SECONDS and
// WORKER_POOL_DROP_POLICY. A trailing underscore on prefix is ignored, and an
// empty prefix reads the bare names (MAX_WORKERS and so on).
//
// Values are read as written: no spaces are trimmed. A value that does not
// parse or is out of range is an error naming the variable and its value,
// such as
//
//	workpool: WORKER_POOL_QUEUE_SIZE="10k" is not an integer
//
// Every bad variable is reported, joined with [errors.Join], and the Config
// returned with an error is the zero Config, which [New] rejects.
//
// ConfigFromEnv is the only function in the package that reads the
// environment; [New] never does.
func ConfigFromEnv(prefix string) (Config, error) {
	if prefix = strings.TrimSuffix(prefix, "_"); prefix != "" {
		prefix += "_"
	}
	c := DefaultConfig()
	var errs []error
	bad := func(name, value, problem string) {
		errs = append(errs, fmt.Errorf("workpool: %s=%q %s", name, value, problem))
	}
	for _, f := range c.intFields() {
		name := prefix + f.key
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange):
			bad(name, v, "is not an integer")
		case err != nil || !f.ok(n):
			bad(name, v, "is out of range: "+f.label+" "+f.rule())
		default:
			*f.ptr = int(n) // fits: every bound is at most math.MaxInt
		}
	}
	name := prefix + "DROP_POLICY"
	if v, ok := os.LookupEnv(name); ok && v != "" {
		if p, err := ParseDropPolicy(v); err != nil {
			bad(name, v, `is not a drop policy: want "newest" or "oldest"`)
		} else {
			c.DropPolicy = p.String()
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
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
	return errors.Join(errs...)
}

// WithConfig applies every field of c: it does what [WithWorkers],
// [WithQueueSize], [WithShutdownTimeout], [WithJobTimeout] and
// [WithDropPolicy] would do with c's values, and touches no other setting.
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
}

// intFields returns c's integer fields, pointing into c.
func (c *Config) intFields() []intField {
	return []intField{
		{&c.MaxWorkers, "MAX_WORKERS", "max workers", 1, MaxWorkers},
		{&c.QueueSize, "QUEUE_SIZE", "queue size", 1, MaxQueueSize},
		{&c.ShutdownTimeoutSeconds, "SHUTDOWN_TIMEOUT_SECONDS", "shutdown timeout seconds", 1, maxSeconds},
		{&c.JobTimeoutSeconds, "JOB_TIMEOUT_SECONDS", "job timeout seconds", 0, maxSeconds},
	}
}

func (f intField) ok(n int64) bool {
	return f.lo <= n && n <= f.hi
}

// rule says what range f accepts, to follow its label in a message.
func (f intField) rule() string {
	if f.lo == 0 {
		return fmt.Sprintf("must be 0 (none) or positive and at most %d", f.hi)
	}
	return fmt.Sprintf("must be positive and at most %d", f.hi)
}

// dropPolicy parses c.DropPolicy; empty means DropNewest.
func (c Config) dropPolicy() (DropPolicy, error) {
	if c.DropPolicy == "" {
		return DropNewest, nil
	}
	return ParseDropPolicy(c.DropPolicy)
}
