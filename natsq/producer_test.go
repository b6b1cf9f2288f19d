package natsq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/workpool-go/workpool"
	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

// EnqueueAll copes with the client's cap on outstanding async publishes,
// and message IDs make a repeated batch a no-op.
func TestEnqueueAllPastAsyncLimitAndDedupe(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL(), jetstream.WithPublishAsyncMaxPending(8))
	queue(t, js, natsq.QueueConfig{})
	const n = 500 // far past the cap of 8 outstanding publishes
	publish(t, js, "batch", n, nil)
	publish(t, js, "batch", n, nil) // the same IDs again: all duplicates
	st, err := js.Stream(context.Background(), "JOBS")
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != n {
		t.Errorf("stream holds %d messages; want %d", si.State.Msgs, n)
	}

	p, err := natsq.NewProducer[job](js, "jobs.one")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Enqueue(context.Background(), "batch-7", job{ID: "batch-7"})
	if err != nil || !ack.Duplicate {
		t.Errorf("Enqueue of an existing ID = %+v, %v; want a duplicate ack", ack, err)
	}
}

// A publish with nothing listening is retried until its context ends, and
// the error says why.
func TestEnqueueGivesUpWithContext(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	p, err := natsq.NewProducer[job](js, "nowhere.job")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = p.Enqueue(ctx, "x", job{})
	if err == nil || !strings.Contains(err.Error(), "nowhere.job") {
		t.Errorf("Enqueue with no stream = %v; want an error naming the subject", err)
	}
}

func TestConstructorsValidate(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: time.Second})
	h := func(context.Context, natsq.Message[job]) error { return nil }
	for _, tc := range []struct {
		name string
		opts []natsq.ConsumerOption
		want string
	}{
		{"codec type", []natsq.ConsumerOption{natsq.WithCodec[[]byte](natsq.Raw{})}, "does not encode"},
		{"heartbeat too long", []natsq.ConsumerOption{natsq.WithHeartbeat(time.Second)}, "heartbeat"},
		{"fetch timeout", []natsq.ConsumerOption{natsq.WithFetchTimeout(time.Millisecond)}, "fetch timeout"},
		{"nil backoff", []natsq.ConsumerOption{natsq.WithBackoff(nil)}, "backoff"},
		{"nil metrics", []natsq.ConsumerOption{natsq.WithMetrics(nil)}, "metrics"},
		{"pool option", []natsq.ConsumerOption{natsq.WithPoolOptions(workpool.WithWorkers(0))}, "workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := natsq.NewConsumer(js, cons, h, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewConsumer = %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := natsq.NewProducer[job](js, "jobs.x", natsq.WithCodec[[]byte](natsq.Raw{})); err == nil {
		t.Error("NewProducer with a []byte codec for job values succeeded; want an error")
	}
	c, err := natsq.NewConsumer(js, cons, h, natsq.WithFetchTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Errorf("Run on an ended context = %v; want nil", err)
	}
	if err := c.Run(context.Background()); err != natsq.ErrRunTwice {
		t.Errorf("second Run = %v; want ErrRunTwice", err)
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := natsq.ExponentialBackoff(time.Second, 5*time.Second)
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 50: 5 * time.Second} {
		if got := b(attempt); got != want {
			t.Errorf("backoff(%d) = %v; want %v", attempt, got, want)
		}
	}
}
