package natsq_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/workpool-go/workpool"
	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

// fast keeps tests quick: short fetches (shutdown waits for the one in
// progress) and retry delays.
func fast(workers, queue int) []natsq.ConsumerOption {
	return []natsq.ConsumerOption{
		natsq.WithFetchTimeout(400 * time.Millisecond),
		natsq.WithBackoff(func(int) time.Duration { return 10 * time.Millisecond }),
		natsq.WithPoolOptions(workpool.WithWorkers(workers), workpool.WithQueueSize(queue)),
	}
}

func newConsumer(t testing.TB, js jetstream.JetStream, cons jetstream.Consumer, h natsq.Handler[job], opts ...natsq.ConsumerOption) *natsq.Consumer[job] {
	t.Helper()
	c, err := natsq.NewConsumer(js, cons, h, opts...)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	return c
}

// Two consumers (two replicas) on one durable consumer: every job completes
// exactly once in total, both take part, and neither holds more messages
// than its pool's capacity.
func TestTwoConsumersShareWorkExactlyOnce(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	const n = 600
	var consumers [2]*natsq.Consumer[job]
	var perConsumer [2]atomic.Int64
	l := newLedger(n)
	for i := range consumers {
		_, js := connect(t, srv.ClientURL())
		cons := queue(t, js, natsq.QueueConfig{AckWait: 5 * time.Second})
		consumers[i] = newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
			if s := consumers[i].Stats(); s.InFlight > s.Capacity {
				t.Errorf("consumer %d holds %d messages; capacity %d", i, s.InFlight, s.Capacity)
			}
			perConsumer[i].Add(1)
			l.done(m.Value.ID)
			time.Sleep(time.Millisecond) // let the other replica have a share
			return nil
		}, fast(4, 4)...)
	}
	_, js := connect(t, srv.ClientURL())
	queue(t, js, natsq.QueueConfig{})
	stops := []func() (time.Duration, error){run(t, consumers[0]), run(t, consumers[1])}
	ids := publish(t, js, "share", n, nil)

	l.wait(t, 30*time.Second)
	for i, stop := range stops {
		if _, err := stop(); err != nil {
			t.Errorf("consumer %d: Run = %v; want nil", i, err)
		}
	}
	l.exactlyOnce(t, ids)
	for i := range perConsumer {
		if perConsumer[i].Load() == 0 {
			t.Errorf("consumer %d handled no job; want both to share the work", i)
		}
	}
	var acked uint64
	for _, c := range consumers {
		s := c.Stats()
		acked += s.Acked
		if s.InFlight != 0 {
			t.Errorf("InFlight after Run = %d; want 0", s.InFlight)
		}
	}
	if acked != n {
		t.Errorf("acked %d in total; want %d", acked, n)
	}
	eventually(t, 5*time.Second, "queue drained", drained(t, js))
}

// A replica whose connection dies mid-job: the messages it held go to the
// other replica once AckWait passes, and every job completes.
func TestKilledConsumerMessagesRedelivered(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	const n = 20
	ackWait := time.Second
	l := newLedger(n)

	ncA, jsA := connect(t, srv.ClientURL())
	consA := queue(t, jsA, natsq.QueueConfig{AckWait: ackWait})
	release := make(chan struct{})
	startedA := make(chan struct{}, n)
	a := newConsumer(t, jsA, consA, func(ctx context.Context, m natsq.Message[job]) error {
		startedA <- struct{}{}
		<-release // stuck until the test is over
		return nil
	}, fast(2, 2)...)
	ids := publish(t, jsA, "kill", n, nil)
	stopA := run(t, a)
	<-startedA
	<-startedA // both workers busy, two more queued

	var redelivered atomic.Int64
	_, jsB := connect(t, srv.ClientURL())
	consB := queue(t, jsB, natsq.QueueConfig{AckWait: ackWait})
	b := newConsumer(t, jsB, consB, func(ctx context.Context, m natsq.Message[job]) error {
		if m.Attempt > 1 {
			redelivered.Add(1)
		}
		l.done(m.Value.ID)
		return nil
	}, fast(4, 4)...)
	stopB := run(t, b)

	killed := time.Now()
	ncA.Close() // the replica dies: no ack, nak or heartbeat from it any more
	l.wait(t, 10*ackWait)
	if took := time.Since(killed); took > 4*ackWait {
		t.Errorf("A's messages reached B %v after A died; want within a few AckWaits (%v)", took, ackWait)
	}
	if got := redelivered.Load(); got < 4 {
		t.Errorf("B saw %d redeliveries; want at least the 4 messages A held", got)
	}
	close(release)
	if _, err := stopA(); err != nil {
		t.Errorf("A: Run = %v; want nil", err)
	}
	if _, err := stopB(); err != nil {
		t.Errorf("B: Run = %v; want nil", err)
	}
	l.atLeastOnce(t, ids)
	if s := a.Stats(); s.Acked != 0 || s.AckFailures == 0 {
		t.Errorf("A: Acked = %d, AckFailures = %d; want 0 and > 0 (its connection was closed)", s.Acked, s.AckFailures)
	}
}

// A job longer than AckWait runs once: heartbeats keep the server from
// redelivering it to the other replica meanwhile.
func TestLongJobRunsOnceThanksToHeartbeats(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	ackWait := time.Second
	var runs atomic.Int64
	done := make(chan struct{})
	h := func(ctx context.Context, m natsq.Message[job]) error {
		if runs.Add(1) > 1 {
			t.Errorf("job %s started again (attempt %d) while running", m.Value.ID, m.Attempt)
			return nil
		}
		time.Sleep(3 * ackWait) // the job's own duration: longer than AckWait
		close(done)
		return nil
	}
	var cs []*natsq.Consumer[job]
	for range 2 {
		_, js := connect(t, srv.ClientURL())
		cons := queue(t, js, natsq.QueueConfig{AckWait: ackWait})
		c := newConsumer(t, js, cons, h, fast(2, 0+1)...)
		cs = append(cs, c)
		run(t, c)
	}
	_, js := connect(t, srv.ClientURL())
	publish(t, js, "long", 1, nil)
	select {
	case <-done:
	case <-time.After(10 * ackWait):
		t.Fatal("long job did not finish")
	}
	eventually(t, 5*time.Second, "queue drained", drained(t, js))
	var beats uint64
	for _, c := range cs {
		beats += c.Stats().Heartbeats
	}
	if beats < 2 {
		t.Errorf("heartbeats = %d; want at least 2 for a job of 3 AckWaits", beats)
	}
	if got := runs.Load(); got != 1 {
		t.Errorf("job ran %d times; want 1", got)
	}
}

// Transient errors are retried with the attempt number until success, or
// until MaxDeliver, where the message is terminated and dead-lettered.
func TestTransientErrorsRetriedUntilSuccessOrMaxDeliver(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 5 * time.Second, MaxDeliver: 3})
	dlq, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dead.jobs"}})
	if err != nil {
		t.Fatalf("CreateStream DLQ: %v", err)
	}

	var mu sync.Mutex
	attempts := map[string][]int{}
	settled := newLedger(2)
	c := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		mu.Lock()
		attempts[m.Value.ID] = append(attempts[m.Value.ID], m.Attempt)
		mu.Unlock()
		switch {
		case m.Attempt <= m.Value.Fail && m.Attempt == 3:
			settled.done(m.Value.ID) // the last attempt: it will be terminated
			return errors.New("still failing")
		case m.Attempt <= m.Value.Fail:
			return errors.New("transient")
		}
		settled.done(m.Value.ID)
		return nil
	}, append(fast(2, 2), natsq.WithDeadLetter("dead.jobs"))...)
	stop := run(t, c)

	p, err := natsq.NewProducer[job](js, "jobs.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []job{{ID: "recovers", Fail: 2}, {ID: "hopeless", Fail: 99}} {
		if _, err := p.Enqueue(context.Background(), j.ID, j); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	settled.wait(t, 10*time.Second)
	eventually(t, 5*time.Second, "queue drained", drained(t, js))
	if _, err := stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}

	mu.Lock()
	for id, want := range map[string][]int{"recovers": {1, 2, 3}, "hopeless": {1, 2, 3}} {
		if got := attempts[id]; !equal(got, want) {
			t.Errorf("attempts of %s = %v; want %v", id, got, want)
		}
	}
	mu.Unlock()
	s := c.Stats()
	if s.Acked != 1 || s.Termed[natsq.TermMaxDeliver] != 1 || s.Naked[natsq.NakError] != 4 || s.DeadLettered != 1 {
		t.Errorf("Acked, Termed[max_deliver], Naked[error], DeadLettered = %d, %d, %d, %d; want 1, 1, 4, 1",
			s.Acked, s.Termed[natsq.TermMaxDeliver], s.Naked[natsq.NakError], s.DeadLettered)
	}
	if s.Redelivered != 4 {
		t.Errorf("Redelivered = %d; want 4", s.Redelivered)
	}
	dead, err := dlq.GetLastMsgForSubject(context.Background(), "dead.jobs")
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	for k, want := range map[string]string{"Natsq-Reason": "max_deliver", "Natsq-Attempts": "3", "Natsq-Subject": "jobs.test", "Natsq-Stream": "JOBS", "Natsq-Error": "still failing"} {
		if got := dead.Header.Get(k); got != want {
			t.Errorf("dead letter header %s = %q; want %q", k, got, want)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Permanent errors and undecodable payloads are terminated at once, counted
// by reason, and leave the work queue.
func TestPermanentAndUndecodableTerminated(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 5 * time.Second, MaxDeliver: 5})
	var calls atomic.Int64
	c := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		calls.Add(1)
		if m.Value.ID == "bad" {
			return natsq.Permanent(errors.New("invalid job"))
		}
		return nil
	}, fast(2, 2)...)
	stop := run(t, c)
	if _, err := js.Publish(context.Background(), "jobs.test", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "ok", 1, nil)
	if _, err := js.Publish(context.Background(), "jobs.test", []byte(`{"id":"bad"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "queue drained", drained(t, js))
	if _, err := stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	s := c.Stats()
	if s.Termed[natsq.TermPermanent] != 1 || s.Termed[natsq.TermUndecodable] != 1 || s.Acked != 1 || s.TotalNaked() != 0 {
		t.Errorf("Termed[permanent], Termed[undecodable], Acked, Naked = %d, %d, %d, %d; want 1, 1, 1, 0",
			s.Termed[natsq.TermPermanent], s.Termed[natsq.TermUndecodable], s.Acked, s.TotalNaked())
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("handler called %d times; want 2 (never for the undecodable message)", got)
	}
	if s.Pool.Failed != 2 {
		t.Errorf("pool Failed = %d; want 2", s.Pool.Failed)
	}
}

// In-flight messages: per replica never above its pool's capacity, across
// the fleet never above MaxAckPending.
func TestInFlightBounds(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	const n, maxAckPending = 200, 6
	var active, peak atomic.Int64
	var cs [2]*natsq.Consumer[job]
	l := newLedger(n)
	h := func(ctx context.Context, m natsq.Message[job]) error {
		a := active.Add(1)
		for p := peak.Load(); a > p && !peak.CompareAndSwap(p, a); p = peak.Load() {
		}
		held := 0
		for i, c := range cs {
			s := c.Stats()
			if s.InFlight > s.Capacity {
				t.Errorf("consumer %d holds %d; capacity %d", i, s.InFlight, s.Capacity)
			}
			held += s.InFlight
		}
		if held > maxAckPending {
			t.Errorf("fleet holds %d messages; MaxAckPending %d", held, maxAckPending)
		}
		time.Sleep(time.Millisecond)
		active.Add(-1)
		l.done(m.Value.ID)
		return nil
	}
	// Each pool could hold 8 (4 workers + 4 queued): the fleet cap of 6 binds.
	for i := range cs {
		_, js := connect(t, srv.ClientURL())
		cons := queue(t, js, natsq.QueueConfig{AckWait: 5 * time.Second, MaxAckPending: maxAckPending})
		cs[i] = newConsumer(t, js, cons, h, fast(4, 4)...)
	}
	_, js := connect(t, srv.ClientURL())
	queue(t, js, natsq.QueueConfig{MaxAckPending: maxAckPending})
	ids := publish(t, js, "bound", n, nil)
	for _, c := range cs {
		run(t, c)
	}
	l.wait(t, 30*time.Second)
	l.exactlyOnce(t, ids)
	if p := peak.Load(); p > maxAckPending {
		t.Errorf("peak running handlers = %d; want <= MaxAckPending %d", p, maxAckPending)
	}
}

// Graceful shutdown hands back unstarted messages at once (another replica
// gets them long before AckWait), lets the running job finish and ack, and
// returns promptly.
func TestGracefulShutdownHandsBackUnstarted(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	const n = 10
	ackWait := 30 * time.Second // nothing in this test may wait for it
	l := newLedger(n)
	release, started := make(chan struct{}), make(chan struct{}, n)

	_, jsA := connect(t, srv.ClientURL())
	consA := queue(t, jsA, natsq.QueueConfig{AckWait: ackWait})
	a := newConsumer(t, jsA, consA, func(ctx context.Context, m natsq.Message[job]) error {
		started <- struct{}{}
		<-release
		l.done(m.Value.ID)
		return nil
	}, fast(1, 4)...)
	ids := publish(t, jsA, "graceful", n, nil)
	stopA := run(t, a)
	<-started
	eventually(t, 5*time.Second, "A holds a full pool", func() bool { return a.Stats().Pool.Queued == 4 })

	stopped := make(chan struct{})
	var runErr error
	var took time.Duration
	go func() {
		took, runErr = stopA()
		close(stopped)
	}()
	// A naks its 4 queued messages at once; B takes them and the other 5.
	_, jsB := connect(t, srv.ClientURL())
	consB := queue(t, jsB, natsq.QueueConfig{AckWait: ackWait})
	b := newConsumer(t, jsB, consB, func(ctx context.Context, m natsq.Message[job]) error {
		l.done(m.Value.ID)
		return nil
	}, fast(2, 2)...)
	stopB := run(t, b)
	eventually(t, 5*time.Second, "B completes the 9 jobs A did not start", func() bool { return l.total.Load() == n-1 })

	select {
	case <-stopped:
		t.Fatal("A's Run returned while its job was still running")
	default:
	}
	release <- struct{}{}
	<-stopped
	if runErr != nil {
		t.Errorf("A: Run = %v; want nil", runErr)
	}
	if took > 3*time.Second {
		t.Errorf("A: Run took %v after cancel; want prompt", took)
	}
	l.wait(t, 5*time.Second)
	l.exactlyOnce(t, ids)
	if s := a.Stats(); s.Acked != 1 || s.Naked[natsq.NakShutdown] != 4 || s.InFlight != 0 {
		t.Errorf("A: Acked, Naked[shutdown], InFlight = %d, %d, %d; want 1, 4, 0",
			s.Acked, s.Naked[natsq.NakShutdown], s.InFlight)
	}
	if _, err := stopB(); err != nil {
		t.Errorf("B: Run = %v; want nil", err)
	}
	eventually(t, 5*time.Second, "queue drained", drained(t, jsA))
}

// A server restart with the same store directory loses nothing: the jobs
// survive it, the consumer reconnects and completes them all.
func TestServerRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, embedded.Options{StoreDir: dir})
	port := srv.Port()
	const n = 300
	l := newLedger(n + 1)
	third := make(chan struct{})
	var once sync.Once
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 2 * time.Second})
	c := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		if l.total.Load() >= n/3 {
			once.Do(func() { close(third) })
		}
		time.Sleep(time.Millisecond)
		l.done(m.Value.ID)
		return nil
	}, fast(2, 2)...)
	ids := publish(t, js, "restart", n, nil)
	stop := run(t, c)
	<-third
	srv.Shutdown()
	// A producer publishing while the server is down retries until it is
	// back; the same message ID makes a retry of a stored publish a no-op.
	p, err := natsq.NewProducer[job](js, "jobs.late")
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := p.Enqueue(ctx, "late", job{ID: "late"})
		published <- err
	}()
	startServer(t, embedded.Options{StoreDir: dir, Port: port})
	if err := <-published; err != nil {
		t.Fatalf("Enqueue across the restart: %v", err)
	}
	ids = append(ids, "late")

	l.wait(t, 30*time.Second)
	l.atLeastOnce(t, ids)
	eventually(t, 10*time.Second, "queue drained", drained(t, js))
	if _, err := stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	s := c.Stats()
	t.Logf("across the restart: %d fetched, %d acked, %d redelivered, %d fetch errors, %d ack failures",
		s.Fetched, s.Acked, s.Redelivered, s.FetchErrors, s.AckFailures)
}

// Past the pool's shutdown deadline, Run cancels running handlers, naks the
// messages they hold for redelivery at once, and returns the deadline error.
func TestShutdownDeadlineNaksRunning(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 30 * time.Second})
	started := make(chan struct{}, 4)
	stubborn := make(chan struct{})
	c := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		started <- struct{}{}
		if m.Value.ID == "deadline-0" {
			<-stubborn // ignores its context
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}, append(fast(2, 1), natsq.WithPoolOptions(workpool.WithShutdownTimeout(100*time.Millisecond)))...)
	publish(t, js, "deadline", 2, nil)
	stop := run(t, c)
	<-started
	<-started
	took, err := stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v; want context.DeadlineExceeded", err)
	}
	if took > 2*time.Second {
		t.Errorf("Run took %v; want about the 100ms shutdown timeout plus a fetch", took)
	}
	if s := c.Stats(); s.Naked[natsq.NakShutdown] != 2 || s.InFlight != 0 || s.Acked != 0 {
		t.Errorf("Naked[shutdown], InFlight, Acked = %d, %d, %d; want 2, 0, 0", s.Naked[natsq.NakShutdown], s.InFlight, s.Acked)
	}
	close(stubborn) // its late result is discarded
	// Both are available again at once, not after the 30s AckWait.
	l := newLedger(2)
	c2 := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		l.done(m.Value.ID)
		return nil
	}, fast(2, 2)...)
	run(t, c2)
	l.wait(t, 5*time.Second)
}

// A panicking handler is recovered by the pool; its message is naked for a
// retry and the pool counts the panic.
func TestPanicNaksForRetry(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 5 * time.Second})
	l := newLedger(1)
	c := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		if m.Attempt == 1 {
			panic("boom")
		}
		l.done(m.Value.ID)
		return nil
	}, fast(1, 1)...)
	publish(t, js, "panic", 1, nil)
	stop := run(t, c)
	l.wait(t, 5*time.Second)
	if _, err := stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if s := c.Stats(); s.Naked[natsq.NakError] != 1 || s.Acked != 1 || s.Pool.Panicked != 1 {
		t.Errorf("Naked[error], Acked, Pool.Panicked = %d, %d, %d; want 1, 1, 1", s.Naked[natsq.NakError], s.Acked, s.Pool.Panicked)
	}
}

// A pool stopped by its own base context ends the fetch loop: Run hands the
// messages back and returns the pool's error instead of fetching and naking
// forever.
func TestPoolStoppedByItsContextEndsRun(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 30 * time.Second})
	poolCtx, stopPool := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	c := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}, append(fast(1, 1), natsq.WithPoolOptions(workpool.WithContext(poolCtx)))...)
	publish(t, js, "poolctx", 5, nil)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	<-started
	stopPool()
	// The next fetch finds the pool closed and ends the loop.
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v; want context.Canceled from the pool", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going after its pool stopped")
	}
	if s := c.Stats(); s.InFlight != 0 || s.Acked != 0 {
		t.Errorf("InFlight, Acked = %d, %d; want 0, 0", s.InFlight, s.Acked)
	}
	// Handed back, not left for the 30s AckWait: a new consumer gets all 5 now.
	l := newLedger(5)
	c2 := newConsumer(t, js, cons, func(ctx context.Context, m natsq.Message[job]) error {
		l.done(m.Value.ID)
		return nil
	}, fast(2, 2)...)
	run(t, c2)
	l.wait(t, 5*time.Second)
}
