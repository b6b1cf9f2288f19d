package workpool_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/workpool-go/workpool"
)

// TestMain checks for leaked goroutines. It also quiets slog.Default, where
// the pool reports panics that no hook or logger takes (many tests make
// hooks panic on purpose); TestPanicNeverSilent checks that reporting.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// waitFor is how long a test waits for something that should happen at once.
// It is generous on purpose: a miss is a failure, never a race.
const waitFor = 10 * time.Second

func newPool[T any](t *testing.T, h workpool.Handler[T], opts ...workpool.Option) *workpool.Pool[T] {
	t.Helper()
	p, err := workpool.New(h, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// isDrop reports whether err, given to OnDrop, is a *DropError with reason
// that matches is.
func isDrop(err error, reason workpool.DropReason, is error) bool {
	var de *workpool.DropError
	return errors.As(err, &de) && de.Reason == reason && errors.Is(err, is)
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func shutdown(t *testing.T, p interface{ Shutdown(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v; want nil", err)
	}
}

func checkStats(t *testing.T, got, want workpool.Stats) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats mismatch (-want +got):\n%s", diff)
	}
}

// gate is a handler that reports each job as it starts and holds it until
// released.
type gate struct {
	started chan int
	release chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan int, 1024), release: make(chan struct{})}
}

func (g *gate) handle(ctx context.Context, n int) error {
	g.started <- n
	<-g.release
	return nil
}

// The seed's seven cases, ported and strengthened.

func TestSubmitAndExecute(t *testing.T) {
	done := make(chan int, 1)
	p := newPool(t, func(ctx context.Context, n int) error { done <- n; return nil }, workpool.WithWorkers(2))
	p.Start()
	if err := p.Submit(42); err != nil {
		t.Fatalf("Submit = %v; want nil", err)
	}
	if got := recv(t, done, "job"); got != 42 {
		t.Errorf("handler got %d; want 42", got)
	}
	shutdown(t, p)
	checkStats(t, p.Stats(), workpool.Stats{Workers: 2, QueueCapacity: 1000, Submitted: 1, Completed: 1})
}

func TestBoundedConcurrency(t *testing.T) {
	const workers, jobs = 4, 40
	var active, maxActive atomic.Int64
	g := newGate()
	p := newPool(t, func(ctx context.Context, n int) error {
		cur := active.Add(1)
		for {
			m := maxActive.Load()
			if cur <= m || maxActive.CompareAndSwap(m, cur) {
				break
			}
		}
		err := g.handle(ctx, n)
		active.Add(-1)
		return err
	}, workpool.WithWorkers(workers), workpool.WithQueueSize(jobs))
	p.Start()
	for i := range jobs {
		if err := p.Submit(i); err != nil {
			t.Fatalf("Submit(%d) = %v", i, err)
		}
	}
	// All workers get used: four jobs start while none can finish.
	for range workers {
		recv(t, g.started, "a worker to start a job")
	}
	if s := p.Stats(); s.Active != workers || s.Queued != jobs-workers {
		t.Errorf("Active, Queued = %d, %d; want %d, %d", s.Active, s.Queued, workers, jobs-workers)
	}
	close(g.release)
	shutdown(t, p)
	if got := maxActive.Load(); got != workers {
		t.Errorf("max concurrent handlers = %d; want %d", got, workers)
	}
	if s := p.Stats(); s.Completed != jobs {
		t.Errorf("Completed = %d; want %d", s.Completed, jobs)
	}
}

func TestQueueFull(t *testing.T) {
	g := newGate()
	p := newPool(t, g.handle, workpool.WithWorkers(1), workpool.WithQueueSize(2))
	p.Start()
	if err := p.Submit(0); err != nil {
		t.Fatal(err)
	}
	recv(t, g.started, "the blocker to start")
	for i := 1; i <= 2; i++ {
		if err := p.Submit(i); err != nil {
			t.Fatalf("Submit(%d) = %v; want nil", i, err)
		}
	}
	if err := p.Submit(3); !errors.Is(err, workpool.ErrQueueFull) {
		t.Fatalf("Submit on a full queue = %v; want ErrQueueFull", err)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, Active: 1, Queued: 2, QueueCapacity: 2, Submitted: 3, Rejected: 1})
	close(g.release)
	shutdown(t, p)
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 2, Submitted: 3, Rejected: 1, Completed: 3})
}

func TestGracefulShutdown(t *testing.T) {
	g := newGate()
	var ran sync.Map
	ctxErr := make(chan error, 1)
	p := newPool(t, func(ctx context.Context, n int) error {
		ran.Store(n, true)
		if n == 0 {
			g.started <- n
			<-g.release
			ctxErr <- ctx.Err() // still live: shutdown must not cancel running jobs
		}
		return nil
	}, workpool.WithWorkers(1), workpool.WithQueueSize(10))
	p.Start()
	for i := range 5 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, g.started, "the slow job to start")
	errc := make(chan error, 1)
	go func() { errc <- p.Shutdown(context.Background()) }()
	// Intake closes at once, while the slow job still runs.
	waitUntil(t, "intake to close", func() bool { return !p.IsRunning() })
	if err := p.Submit(99); !errors.Is(err, workpool.ErrClosed) {
		t.Errorf("Submit during shutdown = %v; want ErrClosed", err)
	}
	select {
	case err := <-errc:
		t.Fatalf("Shutdown returned %v while a job was running", err)
	default:
	}
	close(g.release)
	if err := recv(t, errc, "Shutdown"); err != nil {
		t.Fatalf("Shutdown = %v; want nil", err)
	}
	if err := <-ctxErr; err != nil {
		t.Errorf("running job's ctx.Err() during shutdown = %v; want nil", err)
	}
	for i := range 5 {
		if _, ok := ran.Load(i); !ok {
			t.Errorf("queued job %d did not run before Shutdown returned", i)
		}
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 10, Submitted: 5, Rejected: 1, Completed: 5})
}

// TestNotRunningRefuses races Shutdown against a submitter that watches
// IsRunning: once IsRunning has reported false, Submit must refuse. The
// window this guards (IsRunning false before the queue closed) lasted a few
// nanoseconds, so the test tries many times.
func TestNotRunningRefuses(t *testing.T) {
	for i := range 2000 {
		p := newPool(t, func(context.Context, int) error { return nil },
			workpool.WithWorkers(1), workpool.WithQueueSize(4))
		p.Start()
		done := make(chan error, 1)
		go func() { done <- p.Shutdown(context.Background()) }()
		for p.IsRunning() {
			runtime.Gosched()
		}
		if err := p.Submit(i); !errors.Is(err, workpool.ErrClosed) {
			t.Fatalf("round %d: Submit after IsRunning() = false returned %v; want ErrClosed", i, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: Shutdown = %v", i, err)
		}
	}
}

func TestShutdownTimeout(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	sawCancel := make(chan error, 1)
	var dropped []int
	var dropErrs []error
	var mu sync.Mutex
	p := newPool(t, func(ctx context.Context, n int) error {
		close(started)
		<-ctx.Done()
		sawCancel <- ctx.Err()
		<-release // ignores its context after that: Shutdown must not wait
		return ctx.Err()
	}, workpool.WithWorkers(1), workpool.WithQueueSize(10), workpool.OnDrop(func(n int, err error) {
		mu.Lock()
		dropped = append(dropped, n)
		dropErrs = append(dropErrs, err)
		mu.Unlock()
	}))
	defer close(release)
	p.Start()
	for i := range 4 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, started, "the job to start")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := p.Shutdown(ctx)
	elapsed := time.Since(begin)
	if !errors.Is(err, context.DeadlineExceeded) || err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v; want context.DeadlineExceeded unchanged", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Shutdown took %v after its deadline; want prompt", elapsed)
	}
	if err := recv(t, sawCancel, "the running job's cancellation"); !errors.Is(err, context.Canceled) {
		t.Errorf("running job's ctx.Err() = %v; want Canceled", err)
	}
	mu.Lock()
	if diff := cmp.Diff([]int{1, 2, 3}, dropped); diff != "" {
		t.Errorf("dropped jobs (-want +got):\n%s", diff)
	}
	for _, e := range dropErrs {
		if !isDrop(e, workpool.ReasonShutdown, context.DeadlineExceeded) {
			t.Errorf("OnDrop reason = %v; want shutdown, context.DeadlineExceeded", e)
		}
	}
	mu.Unlock()
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, Active: 1, QueueCapacity: 10, Submitted: 4, Dropped: 3})
}

func TestShutdownTimeoutOption(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	p := newPool(t, func(ctx context.Context, n int) error {
		close(started)
		<-release
		return nil
	}, workpool.WithWorkers(1), workpool.WithShutdownTimeout(20*time.Millisecond))
	defer close(release)
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job to start")
	if err := p.Shutdown(context.Background()); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown past WithShutdownTimeout = %v; want context.DeadlineExceeded", err)
	}
}

func TestDoubleStart(t *testing.T) {
	const workers = 2
	var active, maxActive atomic.Int64
	g := newGate()
	p := newPool(t, func(ctx context.Context, n int) error {
		cur := active.Add(1)
		for m := maxActive.Load(); cur > m && !maxActive.CompareAndSwap(m, cur); m = maxActive.Load() {
		}
		defer active.Add(-1)
		return g.handle(ctx, n)
	}, workpool.WithWorkers(workers))
	p.Start()
	p.Start() // idempotent: must not start a second set of workers
	if !p.IsRunning() {
		t.Fatal("IsRunning() = false after Start")
	}
	for i := range 10 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	for range workers {
		recv(t, g.started, "a job to start")
	}
	if s := p.Stats(); s.Active != workers {
		t.Errorf("Active = %d; want %d", s.Active, workers)
	}
	close(g.release)
	shutdown(t, p)
	if got := maxActive.Load(); got != workers {
		t.Errorf("max concurrent handlers after two Starts = %d; want %d", got, workers)
	}
	if p.IsRunning() {
		t.Error("IsRunning() = true after Shutdown")
	}
	p.Start() // no restart after shutdown
	if p.IsRunning() {
		t.Error("IsRunning() = true after Start on a shut-down pool")
	}
}

func TestJobError(t *testing.T) {
	errBoom := errors.New("boom")
	type failure struct {
		job int
		err error
	}
	failures := make(chan failure, 10)
	done := make(chan int, 10)
	p := newPool(t, func(ctx context.Context, n int) error {
		done <- n
		if n == 1 {
			return errBoom
		}
		return nil
	}, workpool.WithWorkers(1), workpool.OnError(func(n int, err error) { failures <- failure{n, err} }))
	p.Start()
	for i := 1; i <= 2; i++ {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, done, "job 1")
	if got := recv(t, done, "job 2 after the failure"); got != 2 {
		t.Errorf("second job = %d; want 2", got)
	}
	shutdown(t, p)
	f := recv(t, failures, "OnError")
	if f.job != 1 || f.err != errBoom {
		t.Errorf("OnError(%d, %v); want OnError(1, boom)", f.job, f.err)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 1000, Submitted: 2, Completed: 2, Failed: 1})
}

// waitUntil polls cond; for states that have no channel to wait on.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestNewValidation(t *testing.T) {
	h := func(context.Context, int) error { return nil }
	tests := []struct {
		name    string
		handler workpool.Handler[int]
		opts    []workpool.Option
		want    []string
	}{
		{"nil handler", nil, nil, []string{"workpool: handler is nil"}},
		{"zero workers", h, []workpool.Option{workpool.WithWorkers(0)}, []string{"workers must be positive", "got 0"}},
		{"too many workers", h, []workpool.Option{workpool.WithWorkers(workpool.MaxWorkers + 1)}, []string{"workers"}},
		{"zero queue", h, []workpool.Option{workpool.WithQueueSize(0)}, []string{"workpool: queue size must be positive", "got 0"}},
		{"negative queue", h, []workpool.Option{workpool.WithQueueSize(-5)}, []string{"queue size", "got -5"}},
		{"huge queue", h, []workpool.Option{workpool.WithQueueSize(workpool.MaxQueueSize + 1)}, []string{"queue size"}},
		{"negative job timeout", h, []workpool.Option{workpool.WithJobTimeout(-time.Second)}, []string{"job timeout must not be negative, got -1s"}},
		{"zero shutdown timeout", h, []workpool.Option{workpool.WithShutdownTimeout(0)}, []string{"shutdown timeout must be positive, got 0s"}},
		{"nil context", h, []workpool.Option{workpool.WithContext(nilContext)}, []string{"context is nil"}},
		{"bad drop policy", h, []workpool.Option{workpool.WithDropPolicy(7)}, []string{"unknown drop policy DropPolicy(7)"}},
		{"nil metrics", h, []workpool.Option{workpool.WithMetrics(nil)}, []string{"metrics is nil"}},
		{"OnDrop of another type", h, []workpool.Option{workpool.OnDrop(func(s string, err error) {})}, []string{"OnDrop function has type func(string, error)", "func(int, error)"}},
		{"OnError of another type", h, []workpool.Option{workpool.OnError(func(s []byte, err error) {})}, []string{"OnError function has type func([]uint8, error)"}},
		{"nil OnDrop", h, []workpool.Option{workpool.OnDrop[int](nil)}, []string{"OnDrop function is nil"}},
		{"several at once", h, []workpool.Option{workpool.WithWorkers(-1), workpool.WithQueueSize(0)}, []string{"workers", "got -1", "queue size", "got 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := workpool.New(tt.handler, tt.opts...)
			if err == nil {
				p.Shutdown(context.Background())
				t.Fatal("New = nil error; want an error")
			}
			if p != nil {
				t.Errorf("New returned a pool with error %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// nilContext is a nil context.Context, for the tests of the nil guards.
var nilContext context.Context

func TestNilContextArguments(t *testing.T) {
	p := newPool(t, func(context.Context, int) error { return nil })
	if err := p.SubmitWait(nilContext, 1); err != workpool.ErrNilContext {
		t.Errorf("SubmitWait(nil, 1) = %v; want ErrNilContext", err)
	}
	if err := p.Shutdown(nilContext); err != workpool.ErrNilContext {
		t.Errorf("Shutdown(nil) = %v; want ErrNilContext", err)
	}
}

func TestDefaults(t *testing.T) {
	var deadline time.Time
	var hasDeadline bool
	done := make(chan struct{})
	p := newPool(t, func(ctx context.Context, n int) error {
		deadline, hasDeadline = ctx.Deadline()
		close(done)
		return nil
	})
	start := time.Now()
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	recv(t, done, "job")
	shutdown(t, p)
	s := p.Stats()
	if s.Workers != 10 || s.QueueCapacity != 1000 {
		t.Errorf("default Workers, QueueCapacity = %d, %d; want 10, 1000", s.Workers, s.QueueCapacity)
	}
	if !hasDeadline {
		t.Fatal("job context has no deadline; want the default 30s job timeout")
	}
	if d := deadline.Sub(start); d < 30*time.Second || d > 31*time.Second+waitFor {
		t.Errorf("job deadline %v after start; want about 30s", d)
	}
}

func TestSubmitBeforeStart(t *testing.T) {
	done := make(chan int, 3)
	p := newPool(t, func(ctx context.Context, n int) error { done <- n; return nil }, workpool.WithWorkers(1))
	for i := range 3 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	if p.IsRunning() {
		t.Error("IsRunning() = true before Start")
	}
	if got := p.QueueDepth(); got != 3 {
		t.Errorf("QueueDepth() before Start = %d; want 3", got)
	}
	p.Start()
	for i := range 3 {
		if got := recv(t, done, "queued job"); got != i {
			t.Errorf("job %d ran as #%d; want FIFO order", got, i)
		}
	}
	shutdown(t, p)
}

func TestShutdownNeverStarted(t *testing.T) {
	var dropped []int
	var reasons []error
	p := newPool(t, func(ctx context.Context, n int) error {
		t.Error("handler ran on a pool that was never started")
		return nil
	}, workpool.OnDrop(func(n int, err error) { dropped = append(dropped, n); reasons = append(reasons, err) }))
	for i := range 3 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	shutdown(t, p)
	if diff := cmp.Diff([]int{0, 1, 2}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	for _, r := range reasons {
		if !isDrop(r, workpool.ReasonClosed, workpool.ErrClosed) {
			t.Errorf("OnDrop reason = %v; want closed, ErrClosed", r)
		}
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 10, QueueCapacity: 1000, Submitted: 3, Dropped: 3})
	if err := p.Submit(4); err != workpool.ErrClosed {
		t.Errorf("Submit after Shutdown = %v; want ErrClosed", err)
	}
}

func TestDropOldest(t *testing.T) {
	g := newGate()
	var ran []int
	var mu sync.Mutex
	type drop struct {
		Job int
		Err error
	}
	var drops []drop
	p := newPool(t, func(ctx context.Context, n int) error {
		if n == 0 {
			return g.handle(ctx, n)
		}
		mu.Lock()
		ran = append(ran, n)
		mu.Unlock()
		return nil
	}, workpool.WithWorkers(1), workpool.WithQueueSize(2), workpool.WithDropPolicy(workpool.DropOldest),
		workpool.OnDrop(func(n int, err error) { drops = append(drops, drop{n, err}) }))
	p.Start()
	if err := p.Submit(0); err != nil {
		t.Fatal(err)
	}
	recv(t, g.started, "the blocker")
	for i := 1; i <= 4; i++ {
		if err := p.Submit(i); err != nil {
			t.Fatalf("Submit(%d) under DropOldest = %v; want nil", i, err)
		}
	}
	if diff := cmp.Diff([]drop{{1, workpool.ErrQueueFull}, {2, workpool.ErrQueueFull}}, drops,
		cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })); diff != "" {
		t.Errorf("evicted (-want +got):\n%s", diff)
	}
	close(g.release)
	shutdown(t, p)
	if diff := cmp.Diff([]int{3, 4}, ran); diff != "" {
		t.Errorf("ran after eviction (-want +got):\n%s", diff)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 2, Submitted: 5, Completed: 3, Dropped: 2})
}

func TestSubmitWait(t *testing.T) {
	g := newGate()
	p := newPool(t, g.handle, workpool.WithWorkers(1), workpool.WithQueueSize(1))
	p.Start()
	if err := p.Submit(0); err != nil {
		t.Fatal(err)
	}
	recv(t, g.started, "the blocker")
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}

	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := p.SubmitWait(ctx, 2); err != context.DeadlineExceeded {
			t.Errorf("SubmitWait on a full queue past its deadline = %v; want DeadlineExceeded", err)
		}
	})
	t.Run("room frees", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- p.SubmitWait(context.Background(), 3) }()
		select {
		case err := <-errc:
			t.Fatalf("SubmitWait returned %v with the queue full", err)
		default:
		}
		g.release <- struct{}{}     // job 0 finishes, job 1 starts, room for 3
		recv(t, g.started, "job 1") // worker took job 1
		if err := recv(t, errc, "SubmitWait"); err != nil {
			t.Fatalf("SubmitWait = %v; want nil once room freed", err)
		}
	})
	t.Run("released by shutdown", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- p.SubmitWait(context.Background(), 4) }()
		waitUntil(t, "SubmitWait to block", func() bool { return p.QueueDepth() == 1 })
		shut := make(chan error, 1)
		go func() { shut <- p.Shutdown(context.Background()) }()
		if err := recv(t, errc, "SubmitWait release"); err != workpool.ErrClosed {
			t.Errorf("blocked SubmitWait at shutdown = %v; want ErrClosed", err)
		}
		close(g.release)
		if err := recv(t, shut, "Shutdown"); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	})
	s := p.Stats()
	if s.Submitted != 3 || s.Completed != 3 || s.Rejected < 1 {
		t.Errorf("Stats = %+v; want 3 submitted and completed, rejections counted", s)
	}
}

func TestSubmitWaitManyWaiters(t *testing.T) {
	const n = 200
	var sum atomic.Int64
	p := newPool(t, func(ctx context.Context, v int) error { sum.Add(int64(v)); return nil },
		workpool.WithWorkers(2), workpool.WithQueueSize(1))
	p.Start()
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.SubmitWait(context.Background(), i); err != nil {
				t.Errorf("SubmitWait(%d) = %v", i, err)
			}
		}()
	}
	wg.Wait()
	shutdown(t, p)
	if got, want := sum.Load(), int64(n*(n+1)/2); got != want {
		t.Errorf("sum of handled jobs = %d; want %d", got, want)
	}
}

func TestBaseContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	sawCancel := make(chan error, 1)
	var drops []error
	var mu sync.Mutex
	p := newPool(t, func(jctx context.Context, n int) error {
		if n != 0 {
			t.Errorf("job %d ran after the base context was cancelled", n)
			return nil
		}
		close(started)
		<-jctx.Done()
		sawCancel <- jctx.Err()
		return jctx.Err()
	}, workpool.WithContext(ctx), workpool.WithWorkers(1),
		workpool.OnDrop(func(n int, err error) { mu.Lock(); drops = append(drops, err); mu.Unlock() }))
	p.Start()
	for i := range 5 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, started, "job 0")
	cancel()
	if err := recv(t, sawCancel, "the job to see cancellation"); err != context.Canceled {
		t.Errorf("job ctx.Err() = %v; want Canceled", err)
	}
	if err := p.Shutdown(context.Background()); err != context.Canceled {
		t.Errorf("Shutdown after base cancel = %v; want context.Canceled", err)
	}
	mu.Lock()
	if len(drops) != 4 {
		t.Errorf("dropped %d jobs; want 4", len(drops))
	}
	for _, e := range drops {
		if !isDrop(e, workpool.ReasonCanceled, context.Canceled) {
			t.Errorf("OnDrop reason = %v; want canceled, context.Canceled", e)
		}
	}
	mu.Unlock()
	if err := p.Submit(9); err != workpool.ErrClosed {
		t.Errorf("Submit after base cancel = %v; want ErrClosed", err)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 1000, Submitted: 5, Rejected: 1, Completed: 1, Failed: 1, Dropped: 4})
}

func TestBaseContextCancelBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dropped := make(chan error, 3)
	p := newPool(t, func(context.Context, int) error {
		t.Error("a job ran after the base context was cancelled")
		return nil
	}, workpool.WithContext(ctx), workpool.OnDrop(func(n int, err error) { dropped <- err }))
	for i := range 3 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	for range 3 {
		if err := recv(t, dropped, "a drop"); !isDrop(err, workpool.ReasonCanceled, context.Canceled) {
			t.Errorf("OnDrop reason = %v; want Canceled", err)
		}
	}
	p.Start()
	if err := p.Shutdown(context.Background()); err != context.Canceled {
		t.Errorf("Shutdown = %v; want Canceled", err)
	}
}

func TestPanicRecovered(t *testing.T) {
	errInner := errors.New("inner")
	errs := make(chan error, 2)
	done := make(chan int, 1)
	p := newPool(t, func(ctx context.Context, n int) error {
		switch n {
		case 1:
			panic("boom")
		case 2:
			panic(errInner)
		}
		done <- n
		return nil
	}, workpool.WithWorkers(1), workpool.OnError(func(n int, err error) { errs <- err }))
	p.Start()
	for i := 1; i <= 3; i++ {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, done, "the job after the panics") // the worker kept serving
	shutdown(t, p)
	var pe *workpool.PanicError
	err := recv(t, errs, "first OnError")
	if !errors.As(err, &pe) || pe.Value != "boom" {
		t.Fatalf("OnError got %v; want *PanicError with value boom", err)
	}
	if !strings.Contains(string(pe.Stack), "TestPanicRecovered") {
		t.Errorf("PanicError.Stack does not show the panicking function:\n%s", pe.Stack)
	}
	if pe.Unwrap() != nil {
		t.Errorf("Unwrap of a string panic = %v; want nil", pe.Unwrap())
	}
	if err := recv(t, errs, "second OnError"); !errors.Is(err, errInner) {
		t.Errorf("errors.Is(panic(err), err) = false for %v", err)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 1000, Submitted: 3, Completed: 3, Failed: 2, Panicked: 2})
}

func TestGoexit(t *testing.T) {
	errs := make(chan error, 1)
	done := make(chan int, 10)
	p := newPool(t, func(ctx context.Context, n int) error {
		if n == 0 {
			runtime.Goexit()
		}
		done <- n
		return nil
	}, workpool.WithWorkers(1), workpool.OnError(func(n int, err error) { errs <- err }))
	p.Start()
	for i := range 5 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		recv(t, done, "jobs after the Goexit") // the worker was replaced
	}
	shutdown(t, p)
	if err := recv(t, errs, "OnError"); err != workpool.ErrGoexit {
		t.Errorf("OnError = %v; want ErrGoexit", err)
	}
	checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 1000, Submitted: 5, Completed: 5, Failed: 1})
}

func TestJobTimeout(t *testing.T) {
	// In a synctest bubble the clock is fake: deadlines pass exactly when
	// every goroutine is blocked, whatever the machine's speed.
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Millisecond
		type result struct {
			job int
			err error
		}
		var results []result
		var mu sync.Mutex
		p, err := workpool.New(func(ctx context.Context, n int) error {
			switch n {
			case 1: // watches its context
				<-ctx.Done()
				return ctx.Err()
			case 2: // ignores it, returns nil late
				time.Sleep(2 * timeout)
				return nil
			case 3: // returns in time
				time.Sleep(timeout / 2)
				return nil
			}
			return nil
		}, workpool.WithWorkers(3), workpool.WithJobTimeout(timeout),
			workpool.OnError(func(n int, err error) {
				mu.Lock()
				results = append(results, result{n, err})
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		start := time.Now()
		for i := 1; i <= 3; i++ {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		// The watching job ended at its deadline: the timeout plus at most
		// one bucket (timeout/64).
		if d := time.Since(start); d != 2*timeout {
			t.Errorf("pool finished after %v; want %v (the late job's sleep)", d, 2*timeout)
		}
		want := []result{{1, context.DeadlineExceeded}, {2, workpool.ErrJobTimeout}}
		if diff := cmp.Diff(want, results, cmp.AllowUnexported(result{}),
			cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })); diff != "" {
			t.Errorf("OnError calls (-want +got):\n%s", diff)
		}
		if !errors.Is(workpool.ErrJobTimeout, context.DeadlineExceeded) {
			t.Error("ErrJobTimeout does not match context.DeadlineExceeded")
		}
		checkStats(t, p.Stats(), workpool.Stats{Workers: 3, QueueCapacity: 1000, Submitted: 3, Completed: 3, Failed: 2})
	})
}

func TestJobDeadlineBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 64 * time.Millisecond
		got := make(chan time.Duration, 1)
		p, err := workpool.New(func(ctx context.Context, start time.Time) error {
			d, _ := ctx.Deadline()
			got <- d.Sub(start)
			return nil
		}, workpool.WithWorkers(1), workpool.WithJobTimeout(timeout))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		for range 3 {
			if err := p.Submit(time.Now()); err != nil {
				t.Fatal(err)
			}
			// Each job gets at least its timeout and at most 1/64 of it more.
			if d := <-got; d < timeout || d > timeout+timeout/64 {
				t.Errorf("job deadline %v after submit; want between %v and %v", d, timeout, timeout+timeout/64)
			}
			time.Sleep(timeout / 3) // jobs that start at different times
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestJobTimeoutDisabled(t *testing.T) {
	has := make(chan bool, 1)
	p := newPool(t, func(ctx context.Context, n int) error {
		_, ok := ctx.Deadline()
		has <- ok
		return nil
	}, workpool.WithJobTimeout(0))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	if recv(t, has, "job") {
		t.Error("job context has a deadline with WithJobTimeout(0)")
	}
}

func TestContextValuesPropagate(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	got := make(chan any, 1)
	p := newPool(t, func(ctx context.Context, n int) error { got <- ctx.Value(key{}); return nil }, workpool.WithContext(ctx))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	if v := recv(t, got, "job"); v != "v" {
		t.Errorf("ctx.Value in job = %v; want v", v)
	}
}

func TestLeakedContextEnds(t *testing.T) {
	leaked := make(chan context.Context, 1)
	p := newPool(t, func(ctx context.Context, n int) error {
		_ = ctx.Done() // arms the context
		leaked <- ctx
		return nil
	}, workpool.WithWorkers(1))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	ctx := recv(t, leaked, "job")
	// The worker goes idle after the job and ends the context it handed out.
	recv(t, ctx.Done(), "the leaked context to end")
	if err := ctx.Err(); err != context.Canceled {
		t.Errorf("leaked ctx.Err() = %v; want Canceled", err)
	}
}

func TestConcurrentSubmitAndShutdown(t *testing.T) {
	const submitters, perSubmitter = 8, 2000
	var ran, dropped atomic.Int64
	p := newPool(t, func(ctx context.Context, n int) error { ran.Add(1); return nil },
		workpool.WithWorkers(4), workpool.WithQueueSize(64), workpool.WithDropPolicy(workpool.DropOldest),
		workpool.OnDrop(func(int, error) { dropped.Add(1) }))
	p.Start()
	var accepted, closed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perSubmitter {
				switch err := p.Submit(i); err {
				case nil:
					accepted.Add(1)
				case workpool.ErrClosed:
					closed.Add(1)
				default:
					t.Errorf("Submit = %v", err)
				}
			}
		}()
	}
	close(start)
	shutdown(t, p) // races the submitters
	wg.Wait()
	s := p.Stats()
	if got := ran.Load() + dropped.Load(); got != accepted.Load() {
		t.Errorf("ran %d + dropped %d = %d; want accepted %d", ran.Load(), dropped.Load(), got, accepted.Load())
	}
	if accepted.Load()+closed.Load() != submitters*perSubmitter {
		t.Errorf("accepted + closed = %d; want %d", accepted.Load()+closed.Load(), submitters*perSubmitter)
	}
	checkStats(t, s, workpool.Stats{Workers: 4, QueueCapacity: 64,
		Submitted: uint64(accepted.Load()), Rejected: uint64(closed.Load()),
		Completed: uint64(ran.Load()), Dropped: uint64(dropped.Load())})
}

func TestConcurrentShutdownCalls(t *testing.T) {
	g := newGate()
	p := newPool(t, g.handle, workpool.WithWorkers(2))
	p.Start()
	for i := range 6 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 5)
	for range 5 {
		go func() { errs <- p.Shutdown(context.Background()) }()
	}
	close(g.release)
	for range 5 {
		if err := recv(t, errs, "Shutdown"); err != nil {
			t.Errorf("concurrent Shutdown = %v; want nil", err)
		}
	}
	if s := p.Stats(); s.Completed != 6 {
		t.Errorf("Completed = %d; want 6", s.Completed)
	}
}

// TestAccountingMixed runs successes, errors, panics, evictions and
// rejections together and checks the accounting identity at rest.
func TestAccountingMixed(t *testing.T) {
	var ran, failedSeen, drops atomic.Int64
	p := newPool(t, func(ctx context.Context, n int) error {
		ran.Add(1)
		switch n % 7 {
		case 3:
			return errors.New("fail")
		case 5:
			panic(fmt.Sprint("panic ", n))
		}
		return nil
	}, workpool.WithWorkers(3), workpool.WithQueueSize(16), workpool.WithDropPolicy(workpool.DropOldest),
		workpool.OnError(func(int, error) { failedSeen.Add(1) }),
		workpool.OnDrop(func(int, error) { drops.Add(1) }))
	p.Start()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				var err error
				if i%2 == 0 {
					err = p.Submit(g*10000 + i)
				} else {
					err = p.SubmitWait(context.Background(), g*10000+i)
				}
				if err != nil {
					t.Errorf("submit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	shutdown(t, p)
	s := p.Stats()
	if s.Submitted != 12000 || s.Completed+s.Dropped != s.Submitted || s.Queued != 0 || s.Active != 0 {
		t.Errorf("Stats = %+v; want Submitted 12000 == Completed + Dropped, nothing queued or active", s)
	}
	if s.Completed != uint64(ran.Load()) || s.Dropped != uint64(drops.Load()) || s.Failed != uint64(failedSeen.Load()) {
		t.Errorf("Stats = %+v; handlers ran %d, OnDrop %d, OnError %d", s, ran.Load(), drops.Load(), failedSeen.Load())
	}
	if s.Panicked == 0 || s.Panicked > s.Failed || s.Failed > s.Completed {
		t.Errorf("Stats = %+v; want 0 < Panicked <= Failed <= Completed", s)
	}
}

func TestHookPanicDoesNotKillWorker(t *testing.T) {
	done := make(chan int, 2)
	p := newPool(t, func(ctx context.Context, n int) error {
		done <- n
		return errors.New("fail")
	}, workpool.WithWorkers(1), workpool.OnError(func(int, error) { panic("hook") }))
	p.Start()
	for i := range 2 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, done, "job 0")
	recv(t, done, "job 1 after the hook panicked")
	shutdown(t, p)
	if s := p.Stats(); s.Completed != 2 || s.Failed != 2 {
		t.Errorf("Stats = %+v; want 2 completed, 2 failed", s)
	}
}

func TestHugeTimeouts(t *testing.T) {
	done := make(chan error, 1)
	p := newPool(t, func(ctx context.Context, n int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok := ctx.Deadline()
		if !ok || d.Before(time.Now().Add(100*365*24*time.Hour)) {
			return fmt.Errorf("deadline %v, %v; want centuries away", d, ok)
		}
		return nil
	}, workpool.WithJobTimeout(time.Duration(math.MaxInt64)), workpool.WithShutdownTimeout(time.Duration(math.MaxInt64)),
		workpool.OnError(func(n int, err error) { done <- err }))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	shutdown(t, p) // a huge shutdown timeout must not fire at once
	select {
	case err := <-done:
		t.Fatalf("job with a huge timeout failed: %v", err)
	default:
	}
	if s := p.Stats(); s.Completed != 1 || s.Failed != 0 {
		t.Errorf("Stats = %+v; want 1 completed, 0 failed", s)
	}
}

// TestShutdownAgainAfterHardStop pins what a second Shutdown does once an
// earlier call's context ended: it waits for the straggling handler within
// the pool's shutdown timeout, then reports the first stop's error.
func TestShutdownAgainAfterHardStop(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	p := newPool(t, func(ctx context.Context, n int) error {
		close(started)
		<-release // ignores its context
		return nil
	}, workpool.WithWorkers(1))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown(cancelled ctx) = %v; want Canceled", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Shutdown(context.Background()) }()
	select {
	case err := <-errc:
		t.Fatalf("second Shutdown returned %v while a handler still ran", err)
	default:
	}
	close(release)
	if err := recv(t, errc, "second Shutdown"); err != context.Canceled {
		t.Errorf("second Shutdown = %v; want the hard stop's error, Canceled", err)
	}
	if s := p.Stats(); s.Active != 0 || s.Completed != 1 {
		t.Errorf("Stats = %+v; want the straggler completed", s)
	}
}

// TestBaseCancelThenShutdownNeverStarted: the base context ends and Shutdown
// follows at once, before the context's watcher has run: the queued jobs
// still go to OnDrop with the context's error, and Shutdown reports it.
func TestBaseCancelThenShutdownNeverStarted(t *testing.T) {
	for i := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var reasons []error
		p, err := workpool.New(func(context.Context, int) error { return nil }, workpool.WithContext(ctx),
			workpool.OnDrop(func(n int, err error) { mu.Lock(); reasons = append(reasons, err); mu.Unlock() }))
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if err := p.Submit(j); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if err := p.Shutdown(context.Background()); err != context.Canceled {
			t.Fatalf("iteration %d: Shutdown = %v; want Canceled", i, err)
		}
		mu.Lock()
		if len(reasons) != 3 {
			t.Fatalf("iteration %d: %d jobs dropped; want 3", i, len(reasons))
		}
		for _, r := range reasons {
			if !isDrop(r, workpool.ReasonCanceled, context.Canceled) {
				t.Fatalf("iteration %d: OnDrop reason = %v; want Canceled", i, r)
			}
		}
		mu.Unlock()
	}
}

// TestEvictionRacingShutdown: a DropOldest Submit racing Shutdown either
// is refused with ErrClosed without evicting anything, or evicts and is
// accepted; it never evicts a queued job and then refuses its own.
func TestEvictionRacingShutdown(t *testing.T) {
	for iter := range 500 {
		var inSubmit, evictedInCall atomic.Bool
		release := make(chan struct{})
		p, err := workpool.New(func(ctx context.Context, n int) error { <-release; return nil },
			workpool.WithWorkers(1), workpool.WithQueueSize(1), workpool.WithDropPolicy(workpool.DropOldest),
			workpool.OnDrop(func(n int, err error) {
				if inSubmit.Load() && err == workpool.ErrQueueFull {
					evictedInCall.Store(true)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		if err := p.Submit(-1); err != nil {
			t.Fatal(err)
		}
		shut := make(chan error, 1)
		go func() { shut <- p.Shutdown(context.Background()) }()
		for i := 0; ; i++ {
			inSubmit.Store(true)
			evictedInCall.Store(false)
			err := p.Submit(i)
			inSubmit.Store(false)
			if err == workpool.ErrClosed {
				if evictedInCall.Load() {
					close(release)
					t.Fatalf("iteration %d: Submit evicted a queued job, then returned ErrClosed (Shutdown = %v)", iter, <-shut)
				}
				break
			}
			if err != nil {
				t.Fatalf("Submit = %v", err)
			}
		}
		close(release)
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		if s := p.Stats(); s.Submitted != s.Completed+s.Dropped {
			t.Fatalf("Stats = %+v; want Submitted == Completed + Dropped", s)
		}
	}
}
