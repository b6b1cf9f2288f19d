package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/workpool-go/workpool"
)

// A pool sends notifications on four workers; at exit Shutdown drains the
// queue and every accepted job has run.
func Example() {
	type Notification struct{ User, Message string }

	var mu sync.Mutex
	sent := map[string]int{}
	pool, err := workpool.New(func(ctx context.Context, n Notification) error {
		mu.Lock()
		defer mu.Unlock()
		sent[n.User]++
		return nil
	}, workpool.WithWorkers(4), workpool.WithQueueSize(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool.Start()
	for _, u := range []string{"ada", "bob", "ada"} {
		if err := pool.Submit(Notification{User: u, Message: "hi"}); err != nil {
			fmt.Println(err)
		}
	}
	if err := pool.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(sent["ada"], sent["bob"])
	fmt.Printf("%+v\n", pool.Stats())
	// Output:
	// 2 1
	// {Workers:4 Active:0 Queued:0 QueueCapacity:100 Submitted:3 Rejected:0 Completed:3 Failed:0 Panicked:0 Dropped:0 Retrying:0 Retries:0}
}

// New validates every option and names what is wrong.
func ExampleNew() {
	_, err := workpool.New(func(ctx context.Context, s string) error { return nil },
		workpool.WithWorkers(0))
	fmt.Println(err)

	_, err = workpool.New(func(ctx context.Context, s string) error { return nil },
		workpool.OnDrop(func(n int, reason error) {}))
	fmt.Println(err)
	// Output:
	// workpool: workers must be positive and at most 1048576, got 0
	// workpool: OnDrop function has type func(int, error), want func(string, error) for this pool's jobs
}

// Submit never blocks: when the queue is full it refuses the job, and the
// caller decides what to do (here: count it).
func ExamplePool_Submit() {
	release := make(chan struct{})
	pool, err := workpool.New(func(ctx context.Context, n int) error {
		<-release
		return nil
	}, workpool.WithWorkers(1), workpool.WithQueueSize(3))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Not started yet: jobs wait in the queue, so it fills deterministically.
	refused := 0
	for i := range 5 {
		if err := pool.Submit(i); errors.Is(err, workpool.ErrQueueFull) {
			refused++
		}
	}
	fmt.Println("queued:", pool.QueueDepth(), "refused:", refused)

	pool.Start()
	close(release)
	if err := pool.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println("completed:", pool.Stats().Completed)
	// Output:
	// queued: 3 refused: 2
	// completed: 3
}

// Shutdown past its deadline cancels the running job and hands the queued
// ones to OnDrop, so the caller can put them back where they came from.
func ExamplePool_Shutdown() {
	started := make(chan struct{})
	var mu sync.Mutex
	var notRun []string // OnDrop may be called from several goroutines
	pool, err := workpool.New(func(ctx context.Context, id string) error {
		close(started)
		<-ctx.Done() // a long job that honours cancellation
		return ctx.Err()
	}, workpool.WithWorkers(1), workpool.OnDrop(func(id string, reason error) {
		mu.Lock()
		defer mu.Unlock()
		notRun = append(notRun, id+" - "+reason.Error())
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool.Start()
	for _, id := range []string{"a", "b", "c"} {
		if err := pool.Submit(id); err != nil {
			fmt.Println(err)
		}
	}
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = pool.Shutdown(ctx) // every OnDrop call has returned when it does
	slices.Sort(notRun)
	for _, s := range notRun {
		fmt.Println("not run:", s)
	}
	fmt.Println("shutdown:", err)
	if err := pool.Submit("d"); err != nil {
		fmt.Println("submit after shutdown:", err)
	}
	// Output:
	// not run: b - workpool: job dropped (shutdown): context deadline exceeded
	// not run: c - workpool: job dropped (shutdown): context deadline exceeded
	// shutdown: context deadline exceeded
	// submit after shutdown: workpool: pool is closed
}

// The reason a job was dropped, as a value: OnDrop receives a
// *workpool.DropError whose Reason has the metric label's name, while
// errors.Is still matches the underlying error.
func ExampleDropError() {
	pool, err := workpool.New(func(ctx context.Context, n int) error { return nil },
		workpool.WithQueueSize(1), workpool.WithDropPolicy(workpool.DropOldest),
		workpool.OnDrop(func(n int, err error) {
			var de *workpool.DropError
			if errors.As(err, &de) {
				fmt.Printf("job %d dropped: %s (queue full: %v)\n", n, de.Reason, errors.Is(err, workpool.ErrQueueFull))
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = pool.Submit(1)
	_ = pool.Submit(2)                      // evicts job 1: the queue holds one job and no worker runs yet
	_ = pool.Shutdown(context.Background()) // never started: job 2 comes back too
	// Output:
	// job 1 dropped: evicted (queue full: true)
	// job 2 dropped: closed (queue full: false)
}
