package natsq

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/workpool-go/workpool"
)

// fetchLoop fetches messages while ctx lasts, asking each time for at most
// the room left in the pool, and submits them.
func (c *Consumer[T]) fetchLoop(ctx context.Context) {
	const minRetry, maxRetry = 50 * time.Millisecond, 2 * time.Second
	retry := minRetry
	for {
		n := c.t.free(ctx.Done())
		if n == 0 || ctx.Err() != nil {
			return
		}
		c.c.fetches.Add(1)
		err := c.fetch(ctx, n)
		if err == nil {
			retry = minRetry
			continue
		}
		c.c.FetchFailed()
		c.logWarn("natsq: fetch failed", "err", err, "retry_in", retry)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		retry = min(2*retry, maxRetry)
	}
}

// fetch runs one fetch request for up to n messages and submits what it
// brings.
func (c *Consumer[T]) fetch(ctx context.Context, n int) error {
	// The request has its own deadline and is not cancelled with ctx: a fetch
	// cut short unsubscribes while the server may already be sending, and
	// those messages would sit out AckWait. Shutdown waits for it instead.
	// (FetchContext alone, not with FetchMaxWait, which nats.go rejects. The
	// server expires the request at 90% of the time left, so its last
	// messages and the expiry notice arrive before the deadline unless this
	// process lags by a tenth of the fetch timeout.)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
	defer cancel()
	batch, err := c.cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return err
	}
	for m := range batch.Messages() {
		c.accept(ctx, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// accept holds a fetched message and submits it to the pool, or naks it at
// once if the consumer is stopping.
func (c *Consumer[T]) accept(ctx context.Context, m jetstream.Msg) {
	c.c.Fetched()
	j := &job{msg: m}
	if !c.t.add(j, time.Now()) {
		c.sendNak(j, 0, NakShutdown)
		return
	}
	// Never blocks: the tracker holds no more messages than the pool has
	// room for. SubmitWait rather than Submit, so a full pool could only
	// slow the loop, never lose a message.
	if err := c.pool.SubmitWait(ctx, j); err != nil {
		c.nak(j, 0, NakShutdown)
		if errors.Is(err, workpool.ErrClosed) {
			// The pool stopped by itself (its base context from
			// WithPoolOptions ended): fetching more would only nak it.
			c.handBack(c.t.stop(jobQueued))
		}
	}
}

// dropped is the pool's OnDrop hook: a job the pool will not run (past its
// shutdown deadline) goes back to the server at once.
func (c *Consumer[T]) dropped(j *job, _ error) { c.nak(j, 0, NakShutdown) }

// handBack naks jobs the tracker has already settled, for redelivery at once.
func (c *Consumer[T]) handBack(jobs []*job) {
	for _, j := range jobs {
		c.sendNak(j, 0, NakShutdown)
	}
}

// heartbeats reports held messages in progress until stop is closed.
func (c *Consumer[T]) heartbeats(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(c.heartbeat / 2)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			now := time.Now()
			c.t.beat(now.Add(-c.heartbeat), now, func(j *job) {
				if err := j.msg.InProgress(); err != nil {
					c.ackFailed("in progress", err)
					return
				}
				c.c.Heartbeat()
			})
		}
	}
}
