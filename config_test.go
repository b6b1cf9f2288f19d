package workpool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
	"gopkg.in/yaml.v3"

	"github.com/workpool-go/workpool"
)

// maxSeconds mirrors the package's bound on the seconds fields.
const maxSeconds = min(math.MaxInt64/int64(time.Second), math.MaxInt)

// maxMillis mirrors the package's bound on the milliseconds fields.
const maxMillis = min(math.MaxInt64/int64(time.Millisecond), math.MaxInt)

// beyondSeconds and beyondAttempts are one past the bounds, as variables so
// that the tests compile where int has 32 bits (and skip them there).
var beyondSeconds, beyondAttempts = int64(maxSeconds) + 1, int64(math.MaxInt32) + 1

// envKeys are the suffixes of every variable ConfigFromEnv reads.
var envKeys = []string{
	"MAX_WORKERS", "QUEUE_SIZE", "SHUTDOWN_TIMEOUT_SECONDS", "JOB_TIMEOUT_SECONDS", "DROP_POLICY",
	"MAX_ATTEMPTS", "RETRY_INITIAL_BACKOFF_MS", "RETRY_MAX_BACKOFF_MS", "RETRY_MULTIPLIER", "RETRY_JITTER",
	"RETRY_PANICS", "RATE_LIMIT", "RATE_BURST",
}

// setEnv leaves exactly env set among the WORKER_POOL_* variables, for the
// rest of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range envKeys {
		t.Setenv("WORKER_POOL_"+k, "") // restores the old value at cleanup
		os.Unsetenv("WORKER_POOL_" + k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestDefaultConfig(t *testing.T) {
	want := workpool.Config{MaxWorkers: 10, QueueSize: 1000, ShutdownTimeoutSeconds: 30, JobTimeoutSeconds: 30, DropPolicy: "newest",
		MaxAttempts: 1, RetryInitialBackoffMillis: 100, RetryMaxBackoffMillis: 10000, RetryMultiplier: 2, RateBurst: 1}
	if diff := cmp.Diff(want, workpool.DefaultConfig()); diff != "" {
		t.Errorf("DefaultConfig() (-want +got):\n%s", diff)
	}
	if err := workpool.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v; want nil", err)
	}
}

func TestConfigTags(t *testing.T) {
	want := map[string][3]string{
		"MaxWorkers":             {"MAX_WORKERS", "max_workers", "max_workers"},
		"QueueSize":              {"QUEUE_SIZE", "queue_size", "queue_size"},
		"ShutdownTimeoutSeconds": {"SHUTDOWN_TIMEOUT_SECONDS", "shutdown_timeout_seconds", "shutdown_timeout_seconds"},
		"JobTimeoutSeconds":      {"JOB_TIMEOUT_SECONDS", "job_timeout_seconds", "job_timeout_seconds"},
		"DropPolicy":             {"DROP_POLICY", "drop_policy", "drop_policy"},

		"MaxAttempts":               {"MAX_ATTEMPTS", "max_attempts", "max_attempts"},
		"RetryInitialBackoffMillis": {"RETRY_INITIAL_BACKOFF_MS", "retry_initial_backoff_ms", "retry_initial_backoff_ms"},
		"RetryMaxBackoffMillis":     {"RETRY_MAX_BACKOFF_MS", "retry_max_backoff_ms", "retry_max_backoff_ms"},
		"RetryMultiplier":           {"RETRY_MULTIPLIER", "retry_multiplier", "retry_multiplier"},
		"RetryJitter":               {"RETRY_JITTER", "retry_jitter", "retry_jitter"},
		"RetryPanics":               {"RETRY_PANICS", "retry_panics", "retry_panics"},
		"RateLimit":                 {"RATE_LIMIT", "rate_limit", "rate_limit"},
		"RateBurst":                 {"RATE_BURST", "rate_burst", "rate_burst"},
	}
	got := map[string][3]string{}
	typ := reflect.TypeFor[workpool.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		got[f.Name] = [3]string{f.Tag.Get("mapstructure"), f.Tag.Get("yaml"), f.Tag.Get("json")}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Config tags mapstructure, yaml, json (-want +got):\n%s", diff)
	}
	var keys []string
	for f := range typ.Fields() {
		keys = append(keys, f.Tag.Get("mapstructure"))
	}
	if diff := cmp.Diff(envKeys, keys); diff != "" {
		t.Errorf("mapstructure tags in field order (-ConfigFromEnv's variables +got):\n%s", diff)
	}
}

// TestConfigFileKeys loads a YAML and a JSON file that set every retry and
// rate field by its tag, starting from DefaultConfig.
func TestConfigFileKeys(t *testing.T) {
	want := withDefaults(func(c *workpool.Config) {
		c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 4, 50, 2000
		c.RetryMultiplier, c.RetryJitter, c.RetryPanics = 3, 0.25, true
		c.RateLimit, c.RateBurst = 0.5, 2
	})
	yamlFile := `
max_attempts: 4
retry_initial_backoff_ms: 50
retry_max_backoff_ms: 2000
retry_multiplier: 3
retry_jitter: 0.25
retry_panics: true
rate_limit: 0.5
rate_burst: 2
`
	got := workpool.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(yamlFile))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("from YAML (-want +got):\n%s", diff)
	}

	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got = workpool.Config{}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON round trip of %s (-want +got):\n%s", b, diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v; want nil", err)
	}
}

// withDefaults returns DefaultConfig changed by f.
func withDefaults(f func(*workpool.Config)) workpool.Config {
	c := workpool.DefaultConfig()
	f(&c)
	return c
}

func TestConfigFromEnv(t *testing.T) {
	def := workpool.DefaultConfig()
	tests := []struct {
		name    string
		env     map[string]string
		want    workpool.Config
		wantErr string
	}{
		{name: "nothing set", want: def},
		{name: "every variable set", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS":              "4",
			"WORKER_POOL_QUEUE_SIZE":               "50",
			"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "5",
			"WORKER_POOL_JOB_TIMEOUT_SECONDS":      "0",
			"WORKER_POOL_DROP_POLICY":              "oldest",
			"WORKER_POOL_MAX_ATTEMPTS":             "5",
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "250",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "4000",
			"WORKER_POOL_RETRY_MULTIPLIER":         "1.5",
			"WORKER_POOL_RETRY_JITTER":             "0.2",
			"WORKER_POOL_RETRY_PANICS":             "true",
			"WORKER_POOL_RATE_LIMIT":               "12.5",
			"WORKER_POOL_RATE_BURST":               "3",
		}, want: workpool.Config{MaxWorkers: 4, QueueSize: 50, ShutdownTimeoutSeconds: 5, JobTimeoutSeconds: 0, DropPolicy: "oldest",
			MaxAttempts: 5, RetryInitialBackoffMillis: 250, RetryMaxBackoffMillis: 4000, RetryMultiplier: 1.5, RetryJitter: 0.2,
			RetryPanics: true, RateLimit: 12.5, RateBurst: 3}},
		{name: "empty values keep defaults", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS":              "",
			"WORKER_POOL_QUEUE_SIZE":               "",
			"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "",
			"WORKER_POOL_JOB_TIMEOUT_SECONDS":      "",
			"WORKER_POOL_DROP_POLICY":              "",
			"WORKER_POOL_MAX_ATTEMPTS":             "",
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "",
			"WORKER_POOL_RETRY_MULTIPLIER":         "",
			"WORKER_POOL_RETRY_JITTER":             "",
			"WORKER_POOL_RETRY_PANICS":             "",
			"WORKER_POOL_RATE_LIMIT":               "",
			"WORKER_POOL_RATE_BURST":               "",
		}, want: def},
		{name: "zeros mean the defaults", env: map[string]string{
			"WORKER_POOL_MAX_ATTEMPTS":             "0",
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "0",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "0",
			"WORKER_POOL_RETRY_MULTIPLIER":         "0",
			"WORKER_POOL_RETRY_JITTER":             "0",
			"WORKER_POOL_RETRY_PANICS":             "0",
			"WORKER_POOL_RATE_LIMIT":               "0",
			"WORKER_POOL_RATE_BURST":               "0",
		}, want: withDefaults(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis, c.RetryMultiplier, c.RateBurst = 0, 0, 0, 0, 0
		})},
		{name: "smallest retry and rate values", env: map[string]string{
			"WORKER_POOL_MAX_ATTEMPTS":             "1",
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "1",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "1",
			"WORKER_POOL_RETRY_MULTIPLIER":         "1",
			"WORKER_POOL_RETRY_JITTER":             "1",
			"WORKER_POOL_RETRY_PANICS":             "false",
			"WORKER_POOL_RATE_LIMIT":               "0.001",
			"WORKER_POOL_RATE_BURST":               "1",
		}, want: withDefaults(func(c *workpool.Config) {
			c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis, c.RetryMultiplier, c.RetryJitter, c.RateLimit = 1, 1, 1, 1, 0.001
		})},
		{name: "initial backoff above the default max, with a max", env: map[string]string{
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "20000",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "20000",
		}, want: withDefaults(func(c *workpool.Config) { c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 20000, 20000 })},
		{name: "initial backoff above the default max, max 0", env: map[string]string{
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "20000",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "0",
		}, want: withDefaults(func(c *workpool.Config) { c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 20000, 0 })},
		{name: "largest values", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS":              fmt.Sprint(workpool.MaxWorkers),
			"WORKER_POOL_QUEUE_SIZE":               fmt.Sprint(workpool.MaxQueueSize),
			"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": fmt.Sprint(maxSeconds),
			"WORKER_POOL_JOB_TIMEOUT_SECONDS":      fmt.Sprint(maxSeconds),
			"WORKER_POOL_MAX_ATTEMPTS":             "2147483647",
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": fmt.Sprint(maxMillis),
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     fmt.Sprint(maxMillis),
			"WORKER_POOL_RETRY_MULTIPLIER":         fmt.Sprint(math.MaxFloat64),
			"WORKER_POOL_RATE_LIMIT":               fmt.Sprint(math.MaxFloat64),
			"WORKER_POOL_RATE_BURST":               "2147483647",
		}, want: withDefaults(func(c *workpool.Config) {
			c.MaxWorkers, c.QueueSize = workpool.MaxWorkers, workpool.MaxQueueSize
			c.ShutdownTimeoutSeconds, c.JobTimeoutSeconds = int(maxSeconds), int(maxSeconds)
			c.MaxAttempts, c.RateBurst = math.MaxInt32, math.MaxInt32
			c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = int(maxMillis), int(maxMillis)
			c.RetryMultiplier, c.RateLimit = math.MaxFloat64, math.MaxFloat64
		})},
		{name: "drop policy in capitals", env: map[string]string{"WORKER_POOL_DROP_POLICY": "OLDEST"},
			want: workpool.Config{MaxWorkers: 10, QueueSize: 1000, ShutdownTimeoutSeconds: 30, JobTimeoutSeconds: 30, DropPolicy: "oldest",
				MaxAttempts: 1, RetryInitialBackoffMillis: 100, RetryMaxBackoffMillis: 10000, RetryMultiplier: 2, RateBurst: 1}},
		{name: "retry panics spelled as strconv.ParseBool reads it", env: map[string]string{"WORKER_POOL_RETRY_PANICS": "T"},
			want: withDefaults(func(c *workpool.Config) { c.RetryPanics = true })},

		{name: "malformed workers", env: map[string]string{"WORKER_POOL_MAX_WORKERS": "ten"},
			wantErr: `workpool: WORKER_POOL_MAX_WORKERS="ten" is not an integer`},
		{name: "malformed queue size", env: map[string]string{"WORKER_POOL_QUEUE_SIZE": "10k"},
			wantErr: `workpool: WORKER_POOL_QUEUE_SIZE="10k" is not an integer`},
		{name: "malformed shutdown timeout", env: map[string]string{"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "30s"},
			wantErr: `workpool: WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS="30s" is not an integer`},
		{name: "malformed job timeout", env: map[string]string{"WORKER_POOL_JOB_TIMEOUT_SECONDS": "1.5"},
			wantErr: `workpool: WORKER_POOL_JOB_TIMEOUT_SECONDS="1.5" is not an integer`},
		{name: "spaces are not trimmed", env: map[string]string{"WORKER_POOL_MAX_WORKERS": " 4"},
			wantErr: `workpool: WORKER_POOL_MAX_WORKERS=" 4" is not an integer`},
		{name: "unknown drop policy", env: map[string]string{"WORKER_POOL_DROP_POLICY": "sideways"},
			wantErr: `workpool: WORKER_POOL_DROP_POLICY="sideways" is not a drop policy: want "newest" or "oldest"`},
		{name: "malformed max attempts", env: map[string]string{"WORKER_POOL_MAX_ATTEMPTS": "x"},
			wantErr: `workpool: WORKER_POOL_MAX_ATTEMPTS="x" is not an integer`},
		{name: "malformed initial backoff", env: map[string]string{"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "100ms"},
			wantErr: `workpool: WORKER_POOL_RETRY_INITIAL_BACKOFF_MS="100ms" is not an integer`},
		{name: "malformed max backoff", env: map[string]string{"WORKER_POOL_RETRY_MAX_BACKOFF_MS": "2.5"},
			wantErr: `workpool: WORKER_POOL_RETRY_MAX_BACKOFF_MS="2.5" is not an integer`},
		{name: "malformed multiplier", env: map[string]string{"WORKER_POOL_RETRY_MULTIPLIER": "2x"},
			wantErr: `workpool: WORKER_POOL_RETRY_MULTIPLIER="2x" is not a number`},
		{name: "malformed jitter", env: map[string]string{"WORKER_POOL_RETRY_JITTER": "20%"},
			wantErr: `workpool: WORKER_POOL_RETRY_JITTER="20%" is not a number`},
		{name: "malformed retry panics", env: map[string]string{"WORKER_POOL_RETRY_PANICS": "yes"},
			wantErr: `workpool: WORKER_POOL_RETRY_PANICS="yes" is not a boolean: want "true" or "false"`},
		{name: "malformed rate limit", env: map[string]string{"WORKER_POOL_RATE_LIMIT": "10/s"},
			wantErr: `workpool: WORKER_POOL_RATE_LIMIT="10/s" is not a number`},
		{name: "malformed rate burst", env: map[string]string{"WORKER_POOL_RATE_BURST": "1.5"},
			wantErr: `workpool: WORKER_POOL_RATE_BURST="1.5" is not an integer`},

		{name: "zero workers", env: map[string]string{"WORKER_POOL_MAX_WORKERS": "0"},
			wantErr: `workpool: WORKER_POOL_MAX_WORKERS="0" is out of range: max workers must be positive and at most 1048576`},
		{name: "too many workers", env: map[string]string{"WORKER_POOL_MAX_WORKERS": "1048577"},
			wantErr: `workpool: WORKER_POOL_MAX_WORKERS="1048577" is out of range: max workers must be positive and at most 1048576`},
		{name: "negative queue size", env: map[string]string{"WORKER_POOL_QUEUE_SIZE": "-1"},
			wantErr: `workpool: WORKER_POOL_QUEUE_SIZE="-1" is out of range: queue size must be positive and at most 1073741824`},
		{name: "queue size too large", env: map[string]string{"WORKER_POOL_QUEUE_SIZE": "1073741825"},
			wantErr: `workpool: WORKER_POOL_QUEUE_SIZE="1073741825" is out of range: queue size must be positive and at most 1073741824`},
		{name: "queue size beyond int64", env: map[string]string{"WORKER_POOL_QUEUE_SIZE": "99999999999999999999"},
			wantErr: `workpool: WORKER_POOL_QUEUE_SIZE="99999999999999999999" is out of range: queue size must be positive and at most 1073741824`},
		{name: "zero shutdown timeout", env: map[string]string{"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "0"},
			wantErr: fmt.Sprintf(`workpool: WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS="0" is out of range: shutdown timeout seconds must be positive and at most %d`, maxSeconds)},
		{name: "shutdown timeout beyond time.Duration", env: map[string]string{"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": fmt.Sprint(maxSeconds + 1)},
			wantErr: fmt.Sprintf(`workpool: WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS="%d" is out of range: shutdown timeout seconds must be positive and at most %d`, maxSeconds+1, maxSeconds)},
		{name: "negative job timeout", env: map[string]string{"WORKER_POOL_JOB_TIMEOUT_SECONDS": "-1"},
			wantErr: fmt.Sprintf(`workpool: WORKER_POOL_JOB_TIMEOUT_SECONDS="-1" is out of range: job timeout seconds must be 0 (none) or positive and at most %d`, maxSeconds)},
		{name: "negative max attempts", env: map[string]string{"WORKER_POOL_MAX_ATTEMPTS": "-1"},
			wantErr: `workpool: WORKER_POOL_MAX_ATTEMPTS="-1" is out of range: max attempts must be 0 (no retry) or positive and at most 2147483647`},
		{name: "too many attempts", env: map[string]string{"WORKER_POOL_MAX_ATTEMPTS": "2147483648"},
			wantErr: `workpool: WORKER_POOL_MAX_ATTEMPTS="2147483648" is out of range: max attempts must be 0 (no retry) or positive and at most 2147483647`},
		{name: "negative initial backoff", env: map[string]string{"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "-100"},
			wantErr: fmt.Sprintf(`workpool: WORKER_POOL_RETRY_INITIAL_BACKOFF_MS="-100" is out of range: retry initial backoff ms must be 0 (the default, 100) or positive and at most %d`, maxMillis)},
		{name: "max backoff beyond time.Duration", env: map[string]string{"WORKER_POOL_RETRY_MAX_BACKOFF_MS": fmt.Sprint(maxMillis + 1)},
			wantErr: fmt.Sprintf(`workpool: WORKER_POOL_RETRY_MAX_BACKOFF_MS="%d" is out of range: retry max backoff ms must be 0 (the default, 10000) or positive and at most %d`, maxMillis+1, maxMillis)},
		{name: "multiplier below 1", env: map[string]string{"WORKER_POOL_RETRY_MULTIPLIER": "0.5"},
			wantErr: `workpool: WORKER_POOL_RETRY_MULTIPLIER="0.5" is out of range: retry multiplier must be 0 (the default, 2) or at least 1 and finite`},
		{name: "infinite multiplier", env: map[string]string{"WORKER_POOL_RETRY_MULTIPLIER": "+Inf"},
			wantErr: `workpool: WORKER_POOL_RETRY_MULTIPLIER="+Inf" is out of range: retry multiplier must be 0 (the default, 2) or at least 1 and finite`},
		{name: "multiplier beyond float64", env: map[string]string{"WORKER_POOL_RETRY_MULTIPLIER": "1e400"},
			wantErr: `workpool: WORKER_POOL_RETRY_MULTIPLIER="1e400" is out of range: retry multiplier must be 0 (the default, 2) or at least 1 and finite`},
		{name: "jitter above 1", env: map[string]string{"WORKER_POOL_RETRY_JITTER": "1.5"},
			wantErr: `workpool: WORKER_POOL_RETRY_JITTER="1.5" is out of range: retry jitter must be between 0 and 1`},
		{name: "jitter NaN", env: map[string]string{"WORKER_POOL_RETRY_JITTER": "NaN"},
			wantErr: `workpool: WORKER_POOL_RETRY_JITTER="NaN" is out of range: retry jitter must be between 0 and 1`},
		{name: "negative rate limit", env: map[string]string{"WORKER_POOL_RATE_LIMIT": "-1"},
			wantErr: `workpool: WORKER_POOL_RATE_LIMIT="-1" is out of range: rate limit must be 0 (no limit) or positive and finite`},
		{name: "infinite rate limit", env: map[string]string{"WORKER_POOL_RATE_LIMIT": "inf"},
			wantErr: `workpool: WORKER_POOL_RATE_LIMIT="inf" is out of range: rate limit must be 0 (no limit) or positive and finite`},
		{name: "negative rate burst", env: map[string]string{"WORKER_POOL_RATE_BURST": "-1"},
			wantErr: `workpool: WORKER_POOL_RATE_BURST="-1" is out of range: rate burst must be 0 (the default, 1) or positive and at most 2147483647`},
		{name: "max backoff below initial", env: map[string]string{
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "2000",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "1000",
		}, wantErr: `workpool: WORKER_POOL_RETRY_MAX_BACKOFF_MS="1000" is less than the initial backoff, WORKER_POOL_RETRY_INITIAL_BACKOFF_MS=2000`},
		{name: "max backoff below the default initial", env: map[string]string{"WORKER_POOL_RETRY_MAX_BACKOFF_MS": "50"},
			wantErr: `workpool: WORKER_POOL_RETRY_MAX_BACKOFF_MS="50" is less than the initial backoff, WORKER_POOL_RETRY_INITIAL_BACKOFF_MS=100 (its default)`},
		{name: "initial backoff above the default max", env: map[string]string{"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "20000"},
			wantErr: `workpool: WORKER_POOL_RETRY_INITIAL_BACKOFF_MS="20000" is more than the max backoff, WORKER_POOL_RETRY_MAX_BACKOFF_MS=10000 (its default)`},
		{name: "bad backoff is reported once", env: map[string]string{
			"WORKER_POOL_RETRY_INITIAL_BACKOFF_MS": "soon",
			"WORKER_POOL_RETRY_MAX_BACKOFF_MS":     "50",
		}, wantErr: `workpool: WORKER_POOL_RETRY_INITIAL_BACKOFF_MS="soon" is not an integer`},

		{name: "several at once", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS":  "0",
			"WORKER_POOL_QUEUE_SIZE":   "10k",
			"WORKER_POOL_DROP_POLICY":  "both",
			"WORKER_POOL_MAX_ATTEMPTS": "x",
			"WORKER_POOL_RETRY_JITTER": "2",
			"WORKER_POOL_RATE_LIMIT":   "fast",
		}, wantErr: `workpool: WORKER_POOL_MAX_WORKERS="0" is out of range: max workers must be positive and at most 1048576` + "\n" +
			`workpool: WORKER_POOL_QUEUE_SIZE="10k" is not an integer` + "\n" +
			`workpool: WORKER_POOL_MAX_ATTEMPTS="x" is not an integer` + "\n" +
			`workpool: WORKER_POOL_DROP_POLICY="both" is not a drop policy: want "newest" or "oldest"` + "\n" +
			`workpool: WORKER_POOL_RETRY_JITTER="2" is out of range: retry jitter must be between 0 and 1` + "\n" +
			`workpool: WORKER_POOL_RATE_LIMIT="fast" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			got, err := workpool.ConfigFromEnv("WORKER_POOL")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ConfigFromEnv error = %v; want %s", err, tt.wantErr)
				}
				if diff := cmp.Diff(workpool.Config{}, got); diff != "" {
					t.Errorf("ConfigFromEnv with an error returned a non-zero Config (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv error = %v; want nil", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ConfigFromEnv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigFromEnvPrefix(t *testing.T) {
	setEnv(t, nil)
	t.Setenv("MAX_WORKERS", "3")
	t.Setenv("APP_MAX_WORKERS", "4")
	t.Setenv("APP_QUEUE_SIZE", "oops")
	for _, tt := range []struct {
		prefix  string
		workers int
		wantErr string
	}{
		{prefix: "", workers: 3},
		{prefix: "APP", wantErr: `workpool: APP_QUEUE_SIZE="oops" is not an integer`},
		{prefix: "APP_", wantErr: `workpool: APP_QUEUE_SIZE="oops" is not an integer`},
		{prefix: "WORKER_POOL", workers: workpool.DefaultWorkers},
	} {
		c, err := workpool.ConfigFromEnv(tt.prefix)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ConfigFromEnv(%q) error = %v; want %s", tt.prefix, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.MaxWorkers != tt.workers {
			t.Errorf("ConfigFromEnv(%q) = MaxWorkers %d, error %v; want %d, nil", tt.prefix, c.MaxWorkers, err, tt.workers)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	with := func(f func(*workpool.Config)) workpool.Config {
		c := workpool.DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     workpool.Config
		wantErr string
	}{
		{"default", workpool.DefaultConfig(), ""},
		// A Config written before the retry and rate fields existed stays
		// valid: their 0 means the defaults, no retry and no limit.
		{"smallest", workpool.Config{MaxWorkers: 1, QueueSize: 1, ShutdownTimeoutSeconds: 1, JobTimeoutSeconds: 0, DropPolicy: "oldest"}, ""},
		{"retry and rate set", with(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 3, 10, 10
			c.RetryMultiplier, c.RetryJitter, c.RetryPanics, c.RateLimit, c.RateBurst = 1, 1, true, 0.01, 5
		}), ""},
		{"largest retry and rate values", with(func(c *workpool.Config) {
			c.MaxAttempts, c.RateBurst = math.MaxInt32, math.MaxInt32
			c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = int(maxMillis), int(maxMillis)
			c.RetryMultiplier, c.RateLimit = math.MaxFloat64, math.MaxFloat64
		}), ""},
		{"max backoff 0 with a large initial backoff", with(func(c *workpool.Config) {
			c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 60000, 0
		}), ""},
		{"largest timeouts", with(func(c *workpool.Config) {
			c.ShutdownTimeoutSeconds, c.JobTimeoutSeconds = int(maxSeconds), int(maxSeconds)
		}), ""},
		{"empty drop policy", with(func(c *workpool.Config) { c.DropPolicy = "" }), ""},
		{"drop policy in any case", with(func(c *workpool.Config) { c.DropPolicy = "Oldest" }), ""},
		{"zero workers", with(func(c *workpool.Config) { c.MaxWorkers = 0 }),
			"workpool: max workers must be positive and at most 1048576, got 0"},
		{"too many workers", with(func(c *workpool.Config) { c.MaxWorkers = workpool.MaxWorkers + 1 }),
			"workpool: max workers must be positive and at most 1048576, got 1048577"},
		{"zero queue size", with(func(c *workpool.Config) { c.QueueSize = 0 }),
			"workpool: queue size must be positive and at most 1073741824, got 0"},
		{"queue size too large", with(func(c *workpool.Config) { c.QueueSize = workpool.MaxQueueSize + 1 }),
			"workpool: queue size must be positive and at most 1073741824, got 1073741825"},
		{"negative shutdown timeout", with(func(c *workpool.Config) { c.ShutdownTimeoutSeconds = -5 }),
			fmt.Sprintf("workpool: shutdown timeout seconds must be positive and at most %d, got -5", maxSeconds)},
		{"negative job timeout", with(func(c *workpool.Config) { c.JobTimeoutSeconds = -1 }),
			fmt.Sprintf("workpool: job timeout seconds must be 0 (none) or positive and at most %d, got -1", maxSeconds)},
		{"unknown drop policy", with(func(c *workpool.Config) { c.DropPolicy = "random" }),
			`workpool: unknown drop policy "random", want "newest" or "oldest"`},
		{"negative max attempts", with(func(c *workpool.Config) { c.MaxAttempts = -1 }),
			"workpool: max attempts must be 0 (no retry) or positive and at most 2147483647, got -1"},
		{"negative initial backoff", with(func(c *workpool.Config) { c.RetryInitialBackoffMillis = -1 }),
			fmt.Sprintf("workpool: retry initial backoff ms must be 0 (the default, 100) or positive and at most %d, got -1", maxMillis)},
		{"negative max backoff", with(func(c *workpool.Config) { c.RetryMaxBackoffMillis = -1 }),
			fmt.Sprintf("workpool: retry max backoff ms must be 0 (the default, 10000) or positive and at most %d, got -1", maxMillis)},
		{"max backoff below initial", with(func(c *workpool.Config) { c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 500, 200 }),
			"workpool: retry max backoff ms must be at least the initial backoff, 500, got 200"},
		{"max backoff below the default initial", with(func(c *workpool.Config) { c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis = 0, 50 }),
			"workpool: retry max backoff ms must be at least the initial backoff, 100, got 50"},
		{"multiplier below 1", with(func(c *workpool.Config) { c.RetryMultiplier = 0.5 }),
			"workpool: retry multiplier must be 0 (the default, 2) or at least 1 and finite, got 0.5"},
		{"multiplier NaN", with(func(c *workpool.Config) { c.RetryMultiplier = math.NaN() }),
			"workpool: retry multiplier must be 0 (the default, 2) or at least 1 and finite, got NaN"},
		{"negative jitter", with(func(c *workpool.Config) { c.RetryJitter = -0.1 }),
			"workpool: retry jitter must be between 0 and 1, got -0.1"},
		{"jitter above 1", with(func(c *workpool.Config) { c.RetryJitter = 1.01 }),
			"workpool: retry jitter must be between 0 and 1, got 1.01"},
		{"negative rate limit", with(func(c *workpool.Config) { c.RateLimit = -2 }),
			"workpool: rate limit must be 0 (no limit) or positive and finite, got -2"},
		{"infinite rate limit", with(func(c *workpool.Config) { c.RateLimit = math.Inf(1) }),
			"workpool: rate limit must be 0 (no limit) or positive and finite, got +Inf"},
		{"negative rate burst", with(func(c *workpool.Config) { c.RateBurst = -1 }),
			"workpool: rate burst must be 0 (the default, 1) or positive and at most 2147483647, got -1"},
		{"several retry and rate fields", with(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryJitter, c.RateLimit = -3, 2, math.NaN()
		}), "workpool: max attempts must be 0 (no retry) or positive and at most 2147483647, got -3\n" +
			"workpool: retry jitter must be between 0 and 1, got 2\n" +
			"workpool: rate limit must be 0 (no limit) or positive and finite, got NaN"},
		{"zero Config", workpool.Config{},
			"workpool: max workers must be positive and at most 1048576, got 0\n" +
				"workpool: queue size must be positive and at most 1073741824, got 0\n" +
				fmt.Sprintf("workpool: shutdown timeout seconds must be positive and at most %d, got 0", maxSeconds)},
	}
	if strconv.IntSize == 64 {
		// Values one past a bound that an int cannot hold on 32-bit
		// platforms (there the bound is the int's own limit).
		tests = append(tests, []struct {
			name    string
			cfg     workpool.Config
			wantErr string
		}{
			{"job timeout beyond time.Duration", with(func(c *workpool.Config) { c.JobTimeoutSeconds = int(beyondSeconds) }),
				fmt.Sprintf("workpool: job timeout seconds must be 0 (none) or positive and at most %d, got %d", maxSeconds, beyondSeconds)},
			{"too many attempts", with(func(c *workpool.Config) { c.MaxAttempts = int(beyondAttempts) }),
				"workpool: max attempts must be 0 (no retry) or positive and at most 2147483647, got 2147483648"},
		}...)
	}
	h := func(context.Context, int) error { return nil }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			// (The largest worker count and queue size are valid too, but a pool
			// that size would allocate gigabytes: see TestConfigFromEnv.)
			if got := fmt.Sprint(err); (err == nil) != (tt.wantErr == "") || (err != nil && got != tt.wantErr) {
				t.Errorf("Validate() = %v; want %q", err, tt.wantErr)
			}
			// New accepts exactly what Validate accepts, with the same error.
			p, err := workpool.New(h, workpool.WithConfig(tt.cfg))
			if p != nil {
				p.Shutdown(context.Background())
			}
			if got := fmt.Sprint(err); (err == nil) != (tt.wantErr == "") || (err != nil && got != tt.wantErr) {
				t.Errorf("New(h, WithConfig(c)) error = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateLargestSizes(t *testing.T) {
	c := workpool.DefaultConfig()
	c.MaxWorkers, c.QueueSize = workpool.MaxWorkers, workpool.MaxQueueSize
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() with MaxWorkers and MaxQueueSize = %v; want nil", err)
	}
}

// TestWithConfigOrder pins the order rule: options after WithConfig override
// it, options before it are overridden, and it touches nothing else.
func TestWithConfigOrder(t *testing.T) {
	cfg := workpool.DefaultConfig()
	cfg.MaxWorkers, cfg.QueueSize = 5, 50
	bad := cfg
	bad.MaxWorkers = 0
	tests := []struct {
		name          string
		opts          []workpool.Option
		workers, size int
		wantErr       string
	}{
		{"config alone", []workpool.Option{workpool.WithConfig(cfg)}, 5, 50, ""},
		{"option before is overridden", []workpool.Option{workpool.WithWorkers(3), workpool.WithQueueSize(7), workpool.WithConfig(cfg)}, 5, 50, ""},
		{"option after overrides", []workpool.Option{workpool.WithConfig(cfg), workpool.WithWorkers(3)}, 3, 50, ""},
		{"later config replaces an earlier one", []workpool.Option{workpool.WithConfig(bad), workpool.WithConfig(cfg)}, 5, 50, ""},
		{"option after is validated", []workpool.Option{workpool.WithConfig(cfg), workpool.WithWorkers(0)}, 0, 0,
			"workpool: workers must be positive and at most 1048576, got 0"},
		{"invalid config is reported even if overridden", []workpool.Option{workpool.WithConfig(bad), workpool.WithWorkers(3)}, 0, 0,
			"workpool: max workers must be positive and at most 1048576, got 0"},
		{"other settings are left alone", []workpool.Option{workpool.WithMetrics(nil), workpool.WithConfig(cfg)}, 0, 0,
			"workpool: metrics is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := workpool.New(func(context.Context, int) error { return nil }, tt.opts...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("New error = %v; want %s", err, tt.wantErr)
				}
				if p != nil {
					p.Shutdown(context.Background())
				}
				return
			}
			if err != nil {
				t.Fatalf("New error = %v; want nil", err)
			}
			shutdown(t, p)
			if s := p.Stats(); s.Workers != tt.workers || s.QueueCapacity != tt.size {
				t.Errorf("Stats() Workers, QueueCapacity = %d, %d; want %d, %d", s.Workers, s.QueueCapacity, tt.workers, tt.size)
			}
		})
	}
}

// TestWithConfigDropPolicy fills a pool that is not started, so the queue
// stays full, and checks which policy the third submission meets.
func TestWithConfigDropPolicy(t *testing.T) {
	cfg := func(policy string) workpool.Config {
		c := workpool.DefaultConfig()
		c.QueueSize, c.DropPolicy = 2, policy
		return c
	}
	tests := []struct {
		name    string
		opts    []workpool.Option
		evicts  bool
		wantErr error
	}{
		{"oldest", []workpool.Option{workpool.WithConfig(cfg("oldest"))}, true, nil},
		{"newest", []workpool.Option{workpool.WithConfig(cfg("newest"))}, false, workpool.ErrQueueFull},
		{"empty means newest", []workpool.Option{workpool.WithConfig(cfg(""))}, false, workpool.ErrQueueFull},
		{"option before is overridden", []workpool.Option{workpool.WithDropPolicy(workpool.DropOldest), workpool.WithConfig(cfg("newest"))}, false, workpool.ErrQueueFull},
		{"option after overrides", []workpool.Option{workpool.WithConfig(cfg("oldest")), workpool.WithDropPolicy(workpool.DropNewest)}, false, workpool.ErrQueueFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evicted []int
			opts := append(tt.opts, workpool.OnDrop(func(n int, err error) {
				if errors.Is(err, workpool.ErrQueueFull) {
					evicted = append(evicted, n)
				}
			}))
			p := newPool(t, func(context.Context, int) error { return nil }, opts...)
			for i := range 2 {
				if err := p.Submit(i); err != nil {
					t.Fatalf("Submit(%d) = %v; want nil", i, err)
				}
			}
			if err := p.Submit(2); err != tt.wantErr {
				t.Errorf("Submit to a full queue = %v; want %v", err, tt.wantErr)
			}
			var want []int
			if tt.evicts {
				want = []int{0}
			}
			if diff := cmp.Diff(want, evicted); diff != "" {
				t.Errorf("evicted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithConfigJobTimeout(t *testing.T) {
	// The largest value must not overflow into a deadline in the past.
	for _, seconds := range []int{7, 0, int(maxSeconds)} {
		t.Run(fmt.Sprint(seconds), func(t *testing.T) {
			type result struct {
				deadline time.Time
				ok       bool
			}
			got := make(chan result, 1)
			cfg := workpool.DefaultConfig()
			cfg.MaxWorkers, cfg.QueueSize, cfg.JobTimeoutSeconds = 2, 3, seconds
			p := newPool(t, func(ctx context.Context, n int) error {
				d, ok := ctx.Deadline()
				got <- result{d, ok}
				return nil
			}, workpool.WithConfig(cfg))
			if s := p.Stats(); s.Workers != 2 || s.QueueCapacity != 3 {
				t.Errorf("Stats() Workers, QueueCapacity = %d, %d; want 2, 3", s.Workers, s.QueueCapacity)
			}
			p.Start()
			before := time.Now()
			if err := p.Submit(1); err != nil {
				t.Fatal(err)
			}
			r := recv(t, got, "job")
			after := time.Now()
			if seconds == 0 {
				if r.ok {
					t.Errorf("job context has deadline %v; want none with JobTimeoutSeconds 0", r.deadline)
				}
				return
			}
			// The deadline is the job's start plus the timeout, rounded up by
			// at most 1/64 of it (see WithJobTimeout).
			timeout := time.Duration(seconds) * time.Second
			slack := timeout / 64
			if timeout > math.MaxInt64-slack {
				slack = 0 // the pool saturates such a deadline: check the lower bound only
				after = after.Add(time.Hour)
			}
			if !r.ok || r.deadline.Before(before.Add(timeout)) || r.deadline.After(after.Add(timeout+slack)) {
				t.Errorf("job deadline = %v, %v; want within [%v, %v]", r.deadline, r.ok,
					before.Add(timeout), after.Add(timeout+slack))
			}
		})
	}
}

func TestWithConfigShutdownTimeout(t *testing.T) {
	cfg := workpool.DefaultConfig()
	cfg.ShutdownTimeoutSeconds = 1
	started := make(chan struct{})
	p := newPool(t, func(ctx context.Context, n int) error {
		close(started)
		<-ctx.Done() // holds Shutdown until the pool stops hard
		return nil
	}, workpool.WithConfig(cfg))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	<-started
	start := time.Now()
	err := p.Shutdown(context.Background())
	if elapsed := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || elapsed < time.Second || elapsed > waitFor {
		t.Errorf("Shutdown = %v after %v; want DeadlineExceeded after 1s", err, elapsed)
	}
}

// TestNewIgnoresEnvironment checks that only ConfigFromEnv reads the
// environment.
func TestNewIgnoresEnvironment(t *testing.T) {
	setEnv(t, map[string]string{
		"WORKER_POOL_MAX_WORKERS": "3",
		"WORKER_POOL_QUEUE_SIZE":  "4",
		"WORKER_POOL_DROP_POLICY": "oldest",
	})
	p := newPool(t, func(context.Context, int) error { return nil })
	if s := p.Stats(); s.Workers != workpool.DefaultWorkers || s.QueueCapacity != workpool.DefaultQueueSize {
		t.Errorf("Stats() Workers, QueueCapacity = %d, %d; want the defaults whatever the environment", s.Workers, s.QueueCapacity)
	}
}

func TestDropPolicyText(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    workpool.DropPolicy
		wantErr bool
	}{
		{"newest", workpool.DropNewest, false},
		{"oldest", workpool.DropOldest, false},
		{"Oldest", workpool.DropOldest, false},
		{"", 0, true},
		{"old", 0, true},
		{" oldest", 0, true},
	} {
		got, err := workpool.ParseDropPolicy(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseDropPolicy(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}

	type settings struct {
		Policy workpool.DropPolicy `json:"policy"`
	}
	b, err := json.Marshal(settings{workpool.DropOldest})
	if string(b) != `{"policy":"oldest"}` || err != nil {
		t.Errorf("json.Marshal = %s, %v; want {\"policy\":\"oldest\"}", b, err)
	}
	var s settings
	if err := json.Unmarshal([]byte(`{"policy":"oldest"}`), &s); err != nil || s.Policy != workpool.DropOldest {
		t.Errorf("json.Unmarshal oldest = %v, %v; want DropOldest, nil", s.Policy, err)
	}
	if err := json.Unmarshal([]byte(`{"policy":"lifo"}`), &s); err == nil {
		t.Error("json.Unmarshal of an unknown policy = nil error")
	}
	if _, err := workpool.DropPolicy(7).MarshalText(); err == nil {
		t.Error("DropPolicy(7).MarshalText() = nil error")
	}
}

// TestWithConfigRetry runs one failing job under the retry policy a Config
// sets, alone or with WithRetry before or after it, and checks when each
// attempt starts (on synctest's clock) and what Attempt reports.
func TestWithConfigRetry(t *testing.T) {
	retry := func(f func(*workpool.Config)) workpool.Option { return workpool.WithConfig(withDefaults(f)) }
	threeAttempts := retry(func(c *workpool.Config) {
		c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryMultiplier = 3, 1000, 3
	})
	tests := []struct {
		name   string
		opts   []workpool.Option
		panics bool
		want   []time.Duration // when each attempt started
	}{
		{"default: one attempt", []workpool.Option{workpool.WithConfig(workpool.DefaultConfig())}, false, []time.Duration{0}},
		{"three attempts", []workpool.Option{threeAttempts}, false, []time.Duration{0, time.Second, 4 * time.Second}},
		{"capped", []workpool.Option{retry(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis, c.RetryMultiplier = 4, 1000, 2000, 3
		})}, false, []time.Duration{0, time.Second, 3 * time.Second, 5 * time.Second}},
		{"zeros mean RetryPolicy's defaults", []workpool.Option{retry(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryMaxBackoffMillis, c.RetryMultiplier = 3, 0, 0, 0
		})}, false, []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}},
		{"full jitter waits at most the backoff", []workpool.Option{retry(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryInitialBackoffMillis, c.RetryJitter = 2, 1000, 1
		})}, false, nil}, // checked below
		{"panics are not retried by default", []workpool.Option{threeAttempts}, true, []time.Duration{0}},
		{"retry panics", []workpool.Option{retry(func(c *workpool.Config) {
			c.MaxAttempts, c.RetryPanics = 2, true
		})}, true, []time.Duration{0, 100 * time.Millisecond}},
		{"WithRetry before is overridden", []workpool.Option{
			workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 5}), workpool.WithConfig(workpool.DefaultConfig()),
		}, false, []time.Duration{0}},
		{"WithRetry after overrides", []workpool.Option{
			threeAttempts, workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: 5 * time.Second}),
		}, false, []time.Duration{0, 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var at []time.Duration
				var attempts []int
				var final []error
				opts := append(tt.opts, workpool.WithWorkers(1), workpool.WithShutdownTimeout(time.Hour),
					workpool.WithLogger(slog.New(slog.DiscardHandler)),
					workpool.OnError(func(n int, err error) { final = append(final, err) }))
				p := startPool(t, func(ctx context.Context, n int) error {
					at = append(at, time.Since(start))
					attempts = append(attempts, workpool.Attempt(ctx))
					if tt.panics {
						panic("boom")
					}
					return errors.New("transient")
				}, opts...)
				if err := p.Submit(1); err != nil {
					t.Fatal(err)
				}
				shutdown(t, p) // graceful: every retry runs
				if tt.want == nil {
					// Full jitter: the one wait is 1s less a random share of
					// it, so below 1s (exact waits would be 1s).
					if len(at) != 2 || at[1] >= time.Second {
						t.Errorf("attempts started at %v; want 0 and then within less than 1s", at)
					}
				} else if !slices.Equal(at, tt.want) {
					t.Errorf("attempts started at %v; want %v", at, tt.want)
				}
				for i, n := range attempts {
					if n != i+1 {
						t.Errorf("Attempt(ctx) = %v; want 1, 2, ...", attempts)
						break
					}
				}
				if len(final) != 1 {
					t.Errorf("OnError called %d times; want once, after the last attempt", len(final))
				}
				if s := p.Stats(); s.Submitted != 1 || s.Completed != 1 || s.Failed != 1 || s.Retries != uint64(len(at)-1) {
					t.Errorf("Stats() = %+v; want Submitted, Completed, Failed 1 and Retries %d", s, len(at)-1)
				}
			})
		})
	}
}

// TestWithConfigRateLimitSettings checks the limit a Config gives a pool,
// alone and with WithRateLimit before or after it.
func TestWithConfigRateLimitSettings(t *testing.T) {
	limited := func(limit float64, burst int) workpool.Option {
		return workpool.WithConfig(withDefaults(func(c *workpool.Config) { c.RateLimit, c.RateBurst = limit, burst }))
	}
	tests := []struct {
		name  string
		opts  []workpool.Option
		limit rate.Limit
		burst int
	}{
		{"default: none", []workpool.Option{workpool.WithConfig(workpool.DefaultConfig())}, rate.Inf, 0},
		{"limit and burst", []workpool.Option{limited(5, 3)}, 5, 3},
		{"below one per second", []workpool.Option{limited(0.25, 1)}, 0.25, 1},
		{"burst 0 means 1", []workpool.Option{limited(5, 0)}, 5, 1},
		{"a burst without a limit is ignored", []workpool.Option{limited(0, 4)}, rate.Inf, 0},
		{"WithRateLimit before is overridden", []workpool.Option{workpool.WithRateLimit(3, 1), limited(0, 1)}, rate.Inf, 0},
		{"WithRateLimit before is replaced", []workpool.Option{workpool.WithRateLimit(3, 1), limited(7, 2)}, 7, 2},
		{"WithRateLimit after overrides", []workpool.Option{limited(5, 3), workpool.WithRateLimit(2, 4)}, 2, 4},
		{"WithRateLimit(rate.Inf) after removes it", []workpool.Option{limited(5, 3), workpool.WithRateLimit(rate.Inf, 0)}, rate.Inf, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(t, func(context.Context, int) error { return nil }, tt.opts...)
			if limit, burst := p.RateLimit(); limit != tt.limit || burst != tt.burst {
				t.Errorf("RateLimit() = %v, %d; want %v, %d", limit, burst, tt.limit, tt.burst)
			}
		})
	}
}

// TestWithConfigRateLimit checks, on synctest's clock, that jobs start at
// the pace a Config sets: a burst at once, then one per 1/RateLimit.
func TestWithConfigRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := workpool.DefaultConfig()
		cfg.MaxWorkers, cfg.RateLimit, cfg.RateBurst = 5, 10, 2
		start := time.Now()
		var mu sync.Mutex
		var at []time.Duration
		p := startPool(t, func(context.Context, int) error {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Since(start))
			return nil
		}, workpool.WithConfig(cfg))
		for i := range 5 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		shutdown(t, p)
		slices.Sort(at)
		want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
		if !slices.Equal(at, want) {
			t.Errorf("jobs started at %v; want %v", at, want)
		}
	})
}
