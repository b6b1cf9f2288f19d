package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/workpool-go/workpool"
)

// A sender retries a provider's transient failures with backoff, but not a
// malformed address: the handler marks that error permanent. OnError hears
// of each job once, with its last error.
func ExampleWithRetry() {
	errUnavailable := errors.New("provider: 503")
	var mu sync.Mutex
	calls := map[string]int{}
	pool, err := workpool.New(func(ctx context.Context, to string) error {
		mu.Lock()
		calls[to]++
		mu.Unlock()
		switch {
		case to == "not-an-address":
			return workpool.Permanent(fmt.Errorf("invalid recipient %q", to))
		case to == "flaky@example.com" && workpool.Attempt(ctx) < 3:
			return errUnavailable // the provider recovers for the third attempt
		}
		return nil
	},
		workpool.WithWorkers(2),
		workpool.WithRetry(workpool.RetryPolicy{
			MaxAttempts:    5,
			InitialBackoff: time.Millisecond,
			MaxBackoff:     10 * time.Millisecond,
			Jitter:         0.2,
		}),
		workpool.OnError(func(to string, err error) {
			fmt.Printf("gave up on %s: %v (permanent: %v)\n", to, err, workpool.IsPermanent(err))
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool.Start()
	for _, to := range []string{"flaky@example.com", "not-an-address"} {
		pool.Submit(to)
	}
	if err := pool.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	s := pool.Stats()
	fmt.Println("calls:", calls["flaky@example.com"], calls["not-an-address"])
	fmt.Println("completed:", s.Completed, "failed:", s.Failed, "retries:", s.Retries)
	// Output:
	// gave up on not-an-address: invalid recipient "not-an-address" (permanent: true)
	// calls: 3 1
	// completed: 2 failed: 1 retries: 2
}

// A handler can tell a retry from a first attempt, for example to log it or
// to use an idempotency key.
func ExampleAttempt() {
	pool, _ := workpool.New(func(ctx context.Context, job string) error {
		fmt.Println(job, "attempt", workpool.Attempt(ctx))
		if workpool.Attempt(ctx) == 1 {
			return errors.New("try again")
		}
		return nil
	}, workpool.WithWorkers(1), workpool.WithRetry(workpool.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}))
	pool.Start()
	pool.Submit("charge-42")
	pool.Shutdown(context.Background())
	// Output:
	// charge-42 attempt 1
	// charge-42 attempt 2
}

// An SMS provider allows 100 messages per second: the pool starts at most
// that many jobs per second, whatever the number of workers, and the
// handler never waits for the limit inside.
func ExampleWithRateLimit() {
	var mu sync.Mutex
	var starts []time.Time
	pool, err := workpool.New(func(ctx context.Context, msg string) error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil
	}, workpool.WithWorkers(8), workpool.WithRateLimit(100, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool.Start()
	begin := time.Now()
	for i := range 11 {
		pool.Submit(fmt.Sprint("message ", i))
	}
	pool.Shutdown(context.Background())
	// A burst of 1, then one token every 10ms: the 11th start is 100ms in.
	elapsed := starts[len(starts)-1].Sub(begin)
	fmt.Println("started:", len(starts), "over at least 100ms:", elapsed >= 100*time.Millisecond)
	// Output:
	// started: 11 over at least 100ms: true
}

// The limit can change while the pool runs, for example when a provider
// announces a new quota; rate.Inf removes it.
func ExamplePool_SetRateLimit() {
	pool, _ := workpool.New(func(ctx context.Context, msg string) error { return nil },
		workpool.WithRateLimit(10, 1))
	pool.Start()
	defer pool.Shutdown(context.Background())

	if err := pool.SetRateLimit(50, 5); err != nil {
		fmt.Println(err)
	}
	fmt.Println(pool.RateLimit())
	fmt.Println(pool.SetRateLimit(0, 1))
	pool.SetRateLimit(rate.Inf, 0)
	limit, _ := pool.RateLimit()
	fmt.Println("limited:", limit != rate.Inf)
	// Output:
	// 50 5
	// workpool: rate limit must be positive (rate.Inf for none), got 0
	// limited: false
}

// Resize follows the load: grow for a backlog, shrink when it is gone.
// Shrinking lets running jobs finish and drops nothing.
func ExamplePool_Resize() {
	pool, _ := workpool.New(func(ctx context.Context, n int) error { return nil }, workpool.WithWorkers(2))
	pool.Start()
	if err := pool.Resize(16); err != nil {
		fmt.Println(err)
	}
	fmt.Println("workers:", pool.Stats().Workers)
	pool.Resize(4)
	fmt.Println("workers:", pool.Stats().Workers)
	fmt.Println(pool.Resize(0))
	pool.Shutdown(context.Background())
	fmt.Println(pool.Resize(8))
	// Output:
	// workers: 16
	// workers: 4
	// workpool: Resize: workers must be positive and at most 1048576, got 0
	// workpool: pool is closed
}
