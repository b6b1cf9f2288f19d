// Command basic shows a workpool end to end: it submits jobs faster than two
// workers can run them, so some are refused, then shuts down gracefully and
// prints the pool's statistics.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/workpool-go/workpool"
)

// Email is the job type: what the handler needs to do one piece of work.
type Email struct {
	To      string
	Subject string
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	send := func(ctx context.Context, e Email) error {
		select {
		case <-time.After(20 * time.Millisecond): // pretend to talk to a mail server
		case <-ctx.Done():
			return ctx.Err()
		}
		if e.To == "bounce@example.com" {
			return errors.New("mailbox unavailable")
		}
		return nil
	}
	pool, err := workpool.New(send,
		workpool.WithWorkers(2),
		workpool.WithQueueSize(5),
		workpool.WithJobTimeout(time.Second),
		workpool.OnError(func(e Email, err error) {
			fmt.Printf("failed: %s: %v\n", e.To, err)
		}),
	)
	if err != nil {
		return err
	}
	pool.Start()

	var refused int
	for i := range 20 {
		to := fmt.Sprintf("user%d@example.com", i)
		if i == 3 {
			to = "bounce@example.com"
		}
		switch err := pool.Submit(Email{To: to, Subject: "hello"}); {
		case errors.Is(err, workpool.ErrQueueFull):
			refused++ // the queue is full: shed load instead of piling up goroutines
		case err != nil:
			return err
		}
	}
	fmt.Printf("submitted 20 jobs, %d refused because the queue was full\n", refused)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pool.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s := pool.Stats()
	fmt.Fprintf(os.Stdout, "stats: submitted=%d rejected=%d completed=%d failed=%d dropped=%d queued=%d active=%d\n",
		s.Submitted, s.Rejected, s.Completed, s.Failed, s.Dropped, s.Queued, s.Active)
	return nil
}
