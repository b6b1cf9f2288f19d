package workpool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/workpool-go/workpool"
)

// maxSeconds mirrors the package's bound on the seconds fields.
const maxSeconds = min(math.MaxInt64/int64(time.Second), math.MaxInt)

// setEnv leaves exactly env set among the WORKER_POOL_* variables, for the
// rest of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range []string{"MAX_WORKERS", "QUEUE_SIZE", "SHUTDOWN_TIMEOUT_SECONDS", "JOB_TIMEOUT_SECONDS", "DROP_POLICY"} {
		t.Setenv("WORKER_POOL_"+k, "") // restores the old value at cleanup
		os.Unsetenv("WORKER_POOL_" + k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestDefaultConfig(t *testing.T) {
	want := workpool.Config{MaxWorkers: 10, QueueSize: 1000, ShutdownTimeoutSeconds: 30, JobTimeoutSeconds: 30, DropPolicy: "newest"}
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
		}, want: workpool.Config{MaxWorkers: 4, QueueSize: 50, ShutdownTimeoutSeconds: 5, JobTimeoutSeconds: 0, DropPolicy: "oldest"}},
		{name: "empty values keep defaults", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS":              "",
			"WORKER_POOL_QUEUE_SIZE":               "",
			"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": "",
			"WORKER_POOL_JOB_TIMEOUT_SECONDS":      "",
			"WORKER_POOL_DROP_POLICY":              "",
		}, want: def},
		{name: "largest values", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS":              fmt.Sprint(workpool.MaxWorkers),
			"WORKER_POOL_QUEUE_SIZE":               fmt.Sprint(workpool.MaxQueueSize),
			"WORKER_POOL_SHUTDOWN_TIMEOUT_SECONDS": fmt.Sprint(maxSeconds),
			"WORKER_POOL_JOB_TIMEOUT_SECONDS":      fmt.Sprint(maxSeconds),
		}, want: workpool.Config{MaxWorkers: workpool.MaxWorkers, QueueSize: workpool.MaxQueueSize,
			ShutdownTimeoutSeconds: int(maxSeconds), JobTimeoutSeconds: int(maxSeconds), DropPolicy: "newest"}},
		{name: "drop policy in capitals", env: map[string]string{"WORKER_POOL_DROP_POLICY": "OLDEST"},
			want: workpool.Config{MaxWorkers: 10, QueueSize: 1000, ShutdownTimeoutSeconds: 30, JobTimeoutSeconds: 30, DropPolicy: "oldest"}},

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

		{name: "several at once", env: map[string]string{
			"WORKER_POOL_MAX_WORKERS": "0",
			"WORKER_POOL_QUEUE_SIZE":  "10k",
			"WORKER_POOL_DROP_POLICY": "both",
		}, wantErr: `workpool: WORKER_POOL_MAX_WORKERS="0" is out of range: max workers must be positive and at most 1048576` + "\n" +
			`workpool: WORKER_POOL_QUEUE_SIZE="10k" is not an integer` + "\n" +
			`workpool: WORKER_POOL_DROP_POLICY="both" is not a drop policy: want "newest" or "oldest"`},
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
		{"smallest", workpool.Config{MaxWorkers: 1, QueueSize: 1, ShutdownTimeoutSeconds: 1, JobTimeoutSeconds: 0, DropPolicy: "oldest"}, ""},
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
		{"job timeout beyond time.Duration", with(func(c *workpool.Config) { c.JobTimeoutSeconds = int(maxSeconds) + 1 }),
			fmt.Sprintf("workpool: job timeout seconds must be 0 (none) or positive and at most %d, got %d", maxSeconds, maxSeconds+1)},
		{"unknown drop policy", with(func(c *workpool.Config) { c.DropPolicy = "random" }),
			`workpool: unknown drop policy "random", want "newest" or "oldest"`},
		{"zero Config", workpool.Config{},
			"workpool: max workers must be positive and at most 1048576, got 0\n" +
				"workpool: queue size must be positive and at most 1073741824, got 0\n" +
				fmt.Sprintf("workpool: shutdown timeout seconds must be positive and at most %d, got 0", maxSeconds)},
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
