package natsq_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer starts an embedded server that the test shuts down at its end.
func startServer(t testing.TB, opts embedded.Options) *embedded.Server {
	t.Helper()
	s, err := embedded.Start(opts)
	if err != nil {
		t.Fatalf("embedded.Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect opens a connection that keeps reconnecting, closed at the test's end.
func connect(t testing.TB, url string, jsOpts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return nc, js
}

// queue creates the stream "JOBS" on "jobs.>" and the durable "workers",
// with cfg's limits.
func queue(t testing.TB, js jetstream.JetStream, cfg natsq.QueueConfig) jetstream.Consumer {
	t.Helper()
	cfg.Stream, cfg.Subjects, cfg.Consumer = "JOBS", []string{"jobs.>"}, "workers"
	cons, err := natsq.Setup(context.Background(), js, cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return cons
}

// job is the test's job type.
type job struct {
	ID   string `json:"id"`
	Fail int    `json:"fail,omitempty"` // fail this many attempts, then succeed
}

// publish enqueues n jobs with IDs prefix-0 ... prefix-(n-1).
func publish(t testing.TB, js jetstream.JetStream, prefix string, n int, mod func(*job)) []string {
	t.Helper()
	p, err := natsq.NewProducer[job](js, "jobs.test")
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	items := make([]natsq.Item[job], n)
	ids := make([]string, n)
	for i := range items {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		items[i] = natsq.Item[job]{ID: ids[i], Value: job{ID: ids[i]}}
		if mod != nil {
			mod(&items[i].Value)
		}
	}
	if err := p.EnqueueAll(context.Background(), items); err != nil {
		t.Fatalf("EnqueueAll: %v", err)
	}
	return ids
}

// run starts c.Run and returns a function that cancels it and returns its
// result and how long it took to return.
func run[T any](t testing.TB, c *natsq.Consumer[T]) (stop func() (time.Duration, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	var took time.Duration
	stop = func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("Run did not return within 30s of cancel")
			}
			took = time.Since(start)
		})
		return took, err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// ledger records which job IDs completed, and how often.
type ledger struct {
	mu       sync.Mutex
	count    map[string]int // guarded by mu
	distinct int            // guarded by mu
	total    atomic.Int64   // completions, repeats included
	want     int
	all      chan struct{} // closed when want distinct IDs completed
}

func newLedger(want int) *ledger {
	return &ledger{count: map[string]int{}, want: want, all: make(chan struct{})}
}

func (l *ledger) done(id string) {
	l.total.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count[id]++
	if l.count[id] == 1 {
		l.distinct++
		if l.distinct == l.want {
			close(l.all)
		}
	}
}

// wait waits until want jobs completed, failing the test after limit.
func (l *ledger) wait(t testing.TB, limit time.Duration) {
	t.Helper()
	select {
	case <-l.all:
	case <-time.After(limit):
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("completed %d of %d jobs within %v", l.distinct, l.want, limit)
	}
}

// exactlyOnce checks that every ID completed exactly once.
func (l *ledger) exactlyOnce(t testing.TB, ids []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if n := l.count[id]; n != 1 {
			t.Errorf("job %s completed %d times; want 1", id, n)
		}
	}
	if len(l.count) != len(ids) {
		t.Errorf("completed %d distinct jobs; want %d", len(l.count), len(ids))
	}
}

// atLeastOnce checks that every ID completed at least once.
func (l *ledger) atLeastOnce(t testing.TB, ids []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.count[id] == 0 {
			t.Errorf("job %s never completed", id)
		}
	}
}

// eventually waits for cond, polling: for states no event announces, such
// as the server's view of a consumer.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drained reports whether the queue's consumer has nothing pending or
// unacknowledged and the work-queue stream is empty.
func drained(t testing.TB, js jetstream.JetStream) func() bool {
	return func() bool {
		cons, err := js.Consumer(context.Background(), "JOBS", "workers")
		if err != nil {
			t.Fatalf("Consumer: %v", err)
		}
		ci, err := cons.Info(context.Background())
		if err != nil {
			t.Fatalf("consumer Info: %v", err)
		}
		st, err := js.Stream(context.Background(), "JOBS")
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		si, err := st.Info(context.Background())
		if err != nil {
			t.Fatalf("stream Info: %v", err)
		}
		return ci.NumAckPending == 0 && ci.NumPending == 0 && si.State.Msgs == 0
	}
}
