package workpool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/workpool-go/workpool"
)

// ConfigFromEnv starts from the defaults and takes each variable that is set;
// bad values are all reported, each with its variable and value.
func ExampleConfigFromEnv() {
	os.Setenv("EXAMPLE_POOL_MAX_WORKERS", "4")
	os.Setenv("EXAMPLE_POOL_DROP_POLICY", "oldest")
	os.Setenv("EXAMPLE_POOL_QUEUE_SIZE", "") // empty: keeps the default
	os.Setenv("EXAMPLE_POOL_MAX_ATTEMPTS", "3")
	os.Setenv("EXAMPLE_POOL_RETRY_JITTER", "0.2")
	os.Setenv("EXAMPLE_POOL_RATE_LIMIT", "50") // jobs per second
	defer func() {
		for _, k := range []string{"MAX_WORKERS", "DROP_POLICY", "QUEUE_SIZE", "MAX_ATTEMPTS", "RETRY_JITTER", "RATE_LIMIT"} {
			os.Unsetenv("EXAMPLE_POOL_" + k)
		}
	}()

	cfg, err := workpool.ConfigFromEnv("EXAMPLE_POOL")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", cfg)

	os.Setenv("EXAMPLE_POOL_MAX_WORKERS", "0")
	os.Setenv("EXAMPLE_POOL_QUEUE_SIZE", "10k")
	os.Setenv("EXAMPLE_POOL_RETRY_JITTER", "20%")
	_, err = workpool.ConfigFromEnv("EXAMPLE_POOL")
	fmt.Println(err)
	// Output:
	// {MaxWorkers:4 QueueSize:1000 ShutdownTimeoutSeconds:30 JobTimeoutSeconds:30 DropPolicy:oldest MaxAttempts:3 RetryInitialBackoffMillis:100 RetryMaxBackoffMillis:10000 RetryMultiplier:2 RetryJitter:0.2 RetryPanics:false RateLimit:50 RateBurst:1}
	// workpool: EXAMPLE_POOL_MAX_WORKERS="0" is out of range: max workers must be positive and at most 1048576
	// workpool: EXAMPLE_POOL_QUEUE_SIZE="10k" is not an integer
	// workpool: EXAMPLE_POOL_RETRY_JITTER="20%" is not a number
}

// An application embeds workpool.Config in its own config struct, loads its
// config file into it, and builds the pool with WithConfig. Starting from
// DefaultConfig keeps the defaults for keys the file leaves out.
func ExampleWithConfig() {
	type AppConfig struct {
		Port       int             `json:"port"`
		WorkerPool workpool.Config `json:"worker_pool"`
	}
	file := []byte(`{
		"port": 8080,
		"worker_pool": {"max_workers": 4, "queue_size": 100, "drop_policy": "oldest",
			"max_attempts": 5, "retry_jitter": 0.2, "rate_limit": 20, "rate_burst": 5}
	}`)

	cfg := AppConfig{WorkerPool: workpool.DefaultConfig()}
	if err := json.Unmarshal(file, &cfg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", cfg.WorkerPool)

	pool, err := workpool.New(func(ctx context.Context, msg string) error { return nil },
		workpool.WithConfig(cfg.WorkerPool))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown(context.Background())
	s := pool.Stats()
	fmt.Println("workers:", s.Workers, "queue capacity:", s.QueueCapacity)
	limit, burst := pool.RateLimit()
	fmt.Println("rate limit:", limit, "burst:", burst)

	// Options after WithConfig override it.
	pool2, err := workpool.New(func(ctx context.Context, msg string) error { return nil },
		workpool.WithConfig(cfg.WorkerPool), workpool.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool2.Shutdown(context.Background())
	fmt.Println("workers:", pool2.Stats().Workers)
	// Output:
	// {MaxWorkers:4 QueueSize:100 ShutdownTimeoutSeconds:30 JobTimeoutSeconds:30 DropPolicy:oldest MaxAttempts:5 RetryInitialBackoffMillis:100 RetryMaxBackoffMillis:10000 RetryMultiplier:2 RetryJitter:0.2 RetryPanics:false RateLimit:20 RateBurst:5}
	// workers: 4 queue capacity: 100
	// rate limit: 20 burst: 5
	// workers: 2
}

// Validate names every bad field and its value; New reports the same errors
// for a Config given to WithConfig.
func ExampleConfig_Validate() {
	cfg := workpool.DefaultConfig()
	cfg.QueueSize = 0
	cfg.DropPolicy = "lifo"
	cfg.RetryInitialBackoffMillis, cfg.RetryMaxBackoffMillis = 5000, 1000
	fmt.Println(cfg.Validate())
	// Output:
	// workpool: queue size must be positive and at most 1073741824, got 0
	// workpool: unknown drop policy "lifo", want "newest" or "oldest"
	// workpool: retry max backoff ms must be at least the initial backoff, 5000, got 1000
}
