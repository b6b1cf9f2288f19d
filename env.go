package workpool

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ConfigFromEnv returns [DefaultConfig] with each field replaced by its
// environment variable, if that is set and not empty. With prefix
// "WORKER_POOL" it reads WORKER_POOL_MAX_WORKERS, WORKER_POOL_QUEUE_SIZE,
// WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS, WORKER_POOL_JOB_TIMEOUT_SECONDS,
// WORKER_POOL_DROP_POLICY, the retry policy's WORKER_POOL_MAX_ATTEMPTS,
// WORKER_POOL_RETRY_INITIAL_BACKOFF_MS, WORKER_POOL_RETRY_MAX_BACKOFF_MS,
// WORKER_POOL_RETRY_MULTIPLIER, WORKER_POOL_RETRY_JITTER and
// WORKER_POOL_RETRY_PANICS, and the rate limit's WORKER_POOL_RATE_LIMIT and
// WORKER_POOL_RATE_BURST. A trailing underscore on prefix is ignored, and an
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
	badNames := map[string]bool{}
	bad := func(name, value, problem string) {
		errs = append(errs, fmt.Errorf("workpool: %s=%q %s", name, value, problem))
		badNames[name] = true
	}
	lookup := func(key string) (name, value string, ok bool) {
		name = prefix + key
		value, ok = os.LookupEnv(name)
		return name, value, ok && value != ""
	}
	for _, f := range c.intFields() {
		name, v, ok := lookup(f.key)
		if !ok {
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
	if name, v, ok := lookup("DROP_POLICY"); ok {
		if p, err := ParseDropPolicy(v); err != nil {
			bad(name, v, `is not a drop policy: want "newest" or "oldest"`)
		} else {
			c.DropPolicy = p.String()
		}
	}
	for _, f := range c.floatFields() {
		name, v, ok := lookup(f.key)
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange):
			bad(name, v, "is not a number")
		case err != nil || !f.ok(x):
			bad(name, v, "is out of range: "+f.label+" "+f.rule)
		default:
			*f.ptr = x
		}
	}
	if name, v, ok := lookup("RETRY_PANICS"); ok {
		if b, err := strconv.ParseBool(v); err != nil {
			bad(name, v, `is not a boolean: want "true" or "false"`)
		} else {
			c.RetryPanics = b
		}
	}
	initName, initV, initSet := lookup("RETRY_INITIAL_BACKOFF_MS")
	maxName, maxV, maxSet := lookup("RETRY_MAX_BACKOFF_MS")
	if !badNames[initName] && !badNames[maxName] && !c.backoffsInOrder() {
		if maxSet {
			bad(maxName, maxV, fmt.Sprintf("is less than the initial backoff, %s=%d%s",
				initName, c.RetryInitialBackoffMillis, defaultNote(initSet)))
		} else {
			bad(initName, initV, fmt.Sprintf("is more than the max backoff, %s=%d (its default)",
				maxName, c.RetryMaxBackoffMillis))
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}
