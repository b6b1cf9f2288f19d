package workpool_test

// Regression tests for the job context's contract: each names the
// behaviour that a shared, reused job context broke.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/workpool-go/workpool"
)

// crashScenarioEnv names the scenario TestCrashScenario runs in a
// subprocess; unset, that test is skipped.
const crashScenarioEnv = "WORKPOOL_CRASH_SCENARIO"

// TestChildContextsOfJobsDoNotCrash runs the common ways of deriving from a
// job's context, many times over on two workers with the default options, in
// a subprocess: a crash inside the context package ("missing cancel
// error", which a reused job context caused) fails this test by name
// instead of killing the test binary.
func TestChildContextsOfJobsDoNotCrash(t *testing.T) {
	for _, sc := range []string{"WithTimeout", "AfterFunc", "HTTP"} {
		t.Run(sc, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashScenario$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), crashScenarioEnv+"="+sc)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestCrashScenario") {
				t.Fatalf("scenario %s in a subprocess: %v\n%s", sc, err, lastLines(out, 40))
			}
		})
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestCrashScenario is the body of TestChildContextsOfJobsDoNotCrash.
func TestCrashScenario(t *testing.T) {
	sc := os.Getenv(crashScenarioEnv)
	if sc == "" {
		t.Skip("run in a subprocess by TestChildContextsOfJobsDoNotCrash")
	}
	jobs := 200_000
	if raceEnabled {
		jobs = 40_000
	}
	var handler workpool.Handler[int]
	switch sc {
	case "WithTimeout":
		handler = func(ctx context.Context, n int) error {
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if c.Err() != nil {
				return c.Err()
			}
			return nil
		}
	case "AfterFunc":
		handler = func(ctx context.Context, n int) error {
			context.AfterFunc(ctx, func() {}) // never stopped
			return nil
		}
	case "HTTP":
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		defer srv.Close()
		client := srv.Client()
		defer client.CloseIdleConnections()
		jobs = 5_000
		if raceEnabled {
			jobs = 2_000
		}
		handler = func(ctx context.Context, n int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		}
	default:
		t.Fatalf("unknown scenario %q", sc)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	p, err := workpool.New(handler, workpool.WithWorkers(2), workpool.WithQueueSize(jobs),
		workpool.OnError(func(n int, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, fmt.Sprint(err))
		}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	p.Start()
	shutdown(t, p)
	if s := p.Stats(); s.Completed != uint64(jobs) || failed.Load() != 0 {
		t.Fatalf("completed %d of %d, %d failed (first: %v)", s.Completed, jobs, failed.Load(), firstErr.Load())
	}
}

// TestKeptJobContextStaysEnded: a context kept past its job ends with it and
// stays ended, whatever the worker runs next: Done is the same closed
// channel, Err the same error, Deadline the same time. Both for a context
// its handler watched (called Done) and one it did not.
func TestKeptJobContextStaysEnded(t *testing.T) {
	for _, watched := range []bool{false, true} {
		t.Run(fmt.Sprintf("watched=%v", watched), func(t *testing.T) {
			kept := make(chan context.Context, 1)
			next := make(chan context.Context, 1)
			release := make(chan struct{})
			p := newPool(t, func(ctx context.Context, n int) error {
				if n == 0 {
					if watched {
						_ = ctx.Done()
					}
					kept <- ctx
					return nil
				}
				next <- ctx
				<-release
				return nil
			}, workpool.WithWorkers(1))
			p.Start()
			if err := p.Submit(0); err != nil {
				t.Fatal(err)
			}
			ctx := recv(t, kept, "the first job")
			dl1, ok1 := ctx.Deadline()
			if err := p.Submit(1); err != nil {
				t.Fatal(err)
			}
			ctx2 := recv(t, next, "the second job") // the worker ran the first job's end
			if ctx2 == ctx {
				t.Fatal("the second job got the first job's context")
			}
			check := func(when string) {
				t.Helper()
				d := ctx.Done()
				select {
				case <-d:
				default:
					t.Fatalf("%s: kept context's Done is open", when)
				}
				if d2 := ctx.Done(); d2 != d {
					t.Errorf("%s: Done returned a different channel", when)
				}
				if err := ctx.Err(); err != context.Canceled {
					t.Errorf("%s: Err() = %v; want Canceled", when, err)
				}
				if c := context.Cause(ctx); c != context.Canceled {
					t.Errorf("%s: Cause = %v; want Canceled", when, c)
				}
				if dl, ok := ctx.Deadline(); dl != dl1 || ok != ok1 {
					t.Errorf("%s: Deadline() = %v, %v; was %v, %v", when, dl, ok, dl1, ok1)
				}
			}
			check("while the next job runs")
			if ctx2.Err() != nil {
				t.Errorf("the running job's Err() = %v; want nil", ctx2.Err())
			}
			close(release)
			shutdown(t, p)
			check("after Shutdown")
		})
	}
}

// TestJobContextCauseAfterTimeoutIsItsOwn: a job context that timed out
// reports DeadlineExceeded from Cause too, even after the base context is
// cancelled with a cause of its own.
func TestJobContextCauseAfterTimeoutIsItsOwn(t *testing.T) {
	for _, watched := range []bool{false, true} {
		t.Run(fmt.Sprintf("watched=%v", watched), func(t *testing.T) {
			base, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			timedOut := make(chan context.Context, 1)
			release := make(chan struct{})
			p := newPool(t, func(ctx context.Context, n int) error {
				if watched {
					<-ctx.Done()
				} else {
					for ctx.Err() == nil {
						time.Sleep(time.Millisecond) // polling is this variant's point
					}
				}
				timedOut <- ctx
				<-release
				return nil
			}, workpool.WithContext(base), workpool.WithWorkers(1),
				workpool.WithJobTimeout(20*time.Millisecond), workpool.OnError(func(int, error) {}))
			p.Start()
			if err := p.Submit(1); err != nil {
				t.Fatal(err)
			}
			ctx := recv(t, timedOut, "the job to time out")
			cancel(errors.New("base stopped: my cause"))
			close(release)
			if err := ctx.Err(); err != context.DeadlineExceeded {
				t.Errorf("Err() = %v; want DeadlineExceeded", err)
			}
			if c := context.Cause(ctx); c != context.DeadlineExceeded {
				t.Errorf("Cause = %v; want DeadlineExceeded, as Err", c)
			}
		})
	}
}

// TestJobContextCauseIsBaseCause: a job ended by its base context reports
// the base's error from Err and the base's cause from Cause, and so do its
// children.
func TestJobContextCauseIsBaseCause(t *testing.T) {
	for _, m := range ctxModes {
		for _, watched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/watched=%v", m.name, watched), func(t *testing.T) {
				base, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				j := startJob(t, append(m.opts, workpool.WithContext(base))...)
				var child context.Context
				if watched {
					var stop context.CancelFunc
					child, stop = context.WithCancel(j.ctx)
					defer stop()
				}
				cause := errors.New("my cause")
				cancel(cause)
				if err := j.ctx.Err(); err != context.Canceled {
					t.Errorf("Err() = %v; want Canceled", err)
				}
				if c := context.Cause(j.ctx); c != cause {
					t.Errorf("Cause = %v; want %v", c, cause)
				}
				if child != nil {
					if c := context.Cause(child); c != cause {
						t.Errorf("child's Cause = %v; want %v", c, cause)
					}
				}
			})
		}
	}
}

// TestJobContextBaseDeadlineIsDeadlineExceeded: when the base context's
// deadline, earlier than the job's, passes, the job's context reports
// DeadlineExceeded, as context.WithTimeout of that base would, and
// Deadline reports the base's.
func TestJobContextBaseDeadlineIsDeadlineExceeded(t *testing.T) {
	for _, m := range ctxModes {
		for _, watched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/watched=%v", m.name, watched), func(t *testing.T) {
				// Long enough for the job to start first, even under -race.
				base, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
				defer cancel()
				baseDeadline, _ := base.Deadline()
				j := startJob(t, append(m.opts, workpool.WithContext(base))...)
				if d, ok := j.ctx.Deadline(); !ok || !d.Equal(baseDeadline) {
					t.Errorf("Deadline() = %v, %v; want the base's %v", d, ok, baseDeadline)
				}
				if watched {
					recv(t, j.ctx.Done(), "the job's context to end")
				} else {
					deadline := time.Now().Add(waitFor)
					for j.ctx.Err() == nil && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond) // polling is this variant's point
					}
				}
				if err := j.ctx.Err(); err != context.DeadlineExceeded {
					t.Errorf("Err() = %v; want DeadlineExceeded", err)
				}
				if c := context.Cause(j.ctx); c != context.DeadlineExceeded {
					t.Errorf("Cause = %v; want DeadlineExceeded", c)
				}
			})
		}
	}
}

// TestSubmitAfterBaseCancelReturnsErrClosed: once the base context's cancel
// has returned, Submit and SubmitWait refuse every job with ErrClosed, and
// no job is accepted (none reaches OnDrop or a handler).
func TestSubmitAfterBaseCancelReturnsErrClosed(t *testing.T) {
	for _, started := range []bool{false, true} {
		t.Run(fmt.Sprintf("started=%v", started), func(t *testing.T) {
			base, cancel := context.WithCancel(context.Background())
			var dropped, ran atomic.Int64
			p := newPool(t, func(ctx context.Context, n int) error { ran.Add(1); return nil },
				workpool.WithContext(base), workpool.OnDrop(func(int, error) { dropped.Add(1) }))
			if started {
				p.Start()
			}
			cancel()
			for i := range 100 {
				if err := p.Submit(i); err != workpool.ErrClosed {
					t.Fatalf("Submit #%d after cancel = %v; want ErrClosed", i, err)
				}
				if err := p.SubmitWait(context.Background(), i); err != workpool.ErrClosed {
					t.Fatalf("SubmitWait #%d after cancel = %v; want ErrClosed", i, err)
				}
			}
			_ = p.Shutdown(context.Background())
			if s := p.Stats(); s.Submitted != 0 || s.Rejected != 200 || dropped.Load() != 0 || ran.Load() != 0 {
				t.Errorf("Stats %+v, %d dropped, %d ran; want 0 accepted, 200 rejected", s, dropped.Load(), ran.Load())
			}
		})
	}
}

// TestChildrenOfJobsLeaveNoGoroutine: 10k jobs each derive a child with
// context.WithCancel and never cancel it; every child is done once its job
// ended, and no goroutine is left after Shutdown. And 10k live children of
// one running job's context start no goroutine.
func TestChildrenOfJobsLeaveNoGoroutine(t *testing.T) {
	const jobs = 10_000
	for _, m := range ctxModes {
		t.Run(m.name+"/live children", func(t *testing.T) {
			j := startJob(t, m.opts...)
			before := runtime.NumGoroutine()
			var kids []context.Context
			for range jobs {
				for _, mk := range []func(context.Context) (context.Context, context.CancelFunc){
					context.WithCancel,
					func(c context.Context) (context.Context, context.CancelFunc) {
						return context.WithTimeout(c, time.Hour)
					},
				} {
					c, cancel := mk(j.ctx)
					defer cancel()
					kids = append(kids, c)
				}
				defer context.AfterFunc(j.ctx, func() {})()
			}
			// runtime.NumGoroutine is approximate while goroutines come
			// and go; a goroutine per child would add 30,000.
			if grew := runtime.NumGoroutine() - before; grew > 100 {
				t.Errorf("%d live children of a job's context started %d goroutines", len(kids)+jobs, grew)
			}
			j.stopHard()
			for i, c := range kids {
				if c.Err() != context.Canceled {
					t.Fatalf("child %d: Err() = %v after a hard stop; want Canceled", i, c.Err())
				}
			}
		})
		t.Run(m.name, func(t *testing.T) {
			var mu sync.Mutex
			children := make([]context.Context, 0, jobs)
			p := newPool(t, func(ctx context.Context, n int) error {
				child, cancel := context.WithCancel(ctx)
				_ = cancel // never called, on purpose: the job's end must cancel child
				mu.Lock()
				children = append(children, child)
				mu.Unlock()
				return nil
			}, append([]workpool.Option{workpool.WithWorkers(4), workpool.WithQueueSize(jobs)}, m.opts...)...)
			for i := range jobs {
				if err := p.Submit(i); err != nil {
					t.Fatal(err)
				}
			}
			p.Start()
			shutdown(t, p)
			if len(children) != jobs {
				t.Fatalf("%d children; want %d", len(children), jobs)
			}
			for i, c := range children {
				select {
				case <-c.Done():
				default:
					t.Fatalf("child %d is not done after Shutdown", i)
				}
			}
			goleak.VerifyNone(t)
		})
	}
}

// TestJobContextChildrenEndWithJob: with the timeout on, children derived in
// a job are done as soon as the job has ended (before the worker's next job
// starts), and a kept context's AfterFunc runs.
func TestJobContextChildrenEndWithJob(t *testing.T) {
	j := startJob(t)
	child, stop := context.WithCancel(j.ctx)
	defer stop()
	timer, stop2 := context.WithTimeout(j.ctx, time.Hour)
	defer stop2()
	ran := make(chan struct{})
	context.AfterFunc(j.ctx, func() { close(ran) })
	j.end()
	for name, c := range map[string]context.Context{"WithCancel": child, "WithTimeout": timer} {
		select {
		case <-c.Done():
		default:
			t.Errorf("%s child not done once the job ended", name)
		}
		if c.Err() != context.Canceled {
			t.Errorf("%s child Err() = %v; want Canceled", name, c.Err())
		}
	}
	recv(t, ran, "AfterFunc to run")
}

// TestSubmitFromOnDropDuringBaseStop: an OnDrop hook that submits while the
// base context's end stops the pool (which drops the queued jobs of a pool
// never started) is refused with ErrClosed and does not deadlock the stop;
// Shutdown then returns.
func TestSubmitFromOnDropDuringBaseStop(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	var p *workpool.Pool[int]
	resubmitted := make(chan error, 8)
	p = newPool(t, func(ctx context.Context, n int) error { return nil },
		workpool.WithContext(base), workpool.OnDrop(func(n int, err error) {
			resubmitted <- p.Submit(n + 100)
			resubmitted <- p.SubmitWait(context.Background(), n+200)
		}))
	for i := range 3 {
		if err := p.Submit(i); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	for range 6 {
		if err := recv(t, resubmitted, "OnDrop's submission"); err != workpool.ErrClosed {
			t.Errorf("Submit from OnDrop during the stop = %v; want ErrClosed", err)
		}
	}
	ctx, stop := context.WithTimeout(context.Background(), waitFor)
	defer stop()
	if err := p.Shutdown(ctx); err != context.Canceled {
		t.Errorf("Shutdown after the base ended = %v; want Canceled (the base's error)", err)
	}
}

// TestShutdownStaysCleanAfterBaseCancel: a pool that shut down cleanly
// keeps saying so after its base context ends and a Submit is refused.
func TestShutdownStaysCleanAfterBaseCancel(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newPool(t, func(ctx context.Context, n int) error { return nil }, workpool.WithContext(base))
	p.Start()
	shutdown(t, p)
	cancel()
	if err := p.Submit(1); err != workpool.ErrClosed {
		t.Errorf("Submit = %v; want ErrClosed", err)
	}
	shutdown(t, p) // nil again
}

// TestJobAllocations: with the job timeout off a job allocates nothing;
// with it on, an unwatched job context costs its share of a slab.
func TestJobAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const jobs = 1024
	for _, tc := range []struct {
		name string
		opts []workpool.Option
		max  float64 // allocations per job
	}{
		{"no-timeout", []workpool.Option{workpool.WithJobTimeout(0)}, 0},
		{"default", nil, 1.0 / 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran atomic.Int64
			p := newPool(t, func(ctx context.Context, n int) error { ran.Add(1); return nil },
				with(tc.opts, workpool.WithWorkers(2), workpool.WithQueueSize(jobs))...)
			p.Start()
			round := func() {
				ran.Store(0)
				for i := range jobs {
					for p.Submit(i) != nil {
						runtime.Gosched()
					}
				}
				for ran.Load() != jobs {
					runtime.Gosched()
				}
			}
			round() // warm up: slabs, wake channel
			if got := testing.AllocsPerRun(20, round) / jobs; got > tc.max {
				t.Errorf("%.4f allocations per job; want at most %.4f", got, tc.max)
			}
		})
	}
}

// TestJobContextAfterFuncMethod: the AfterFunc method, which the context
// package uses only if it cannot reach the watched context, behaves as
// context.AfterFunc: f runs once the context ends, stop keeps it from
// running, and on an ended context f runs at once.
func TestJobContextAfterFuncMethod(t *testing.T) {
	type afterFuncer interface {
		AfterFunc(func()) func() bool
	}
	j := startJob(t)
	a, ok := j.ctx.(afterFuncer)
	if !ok {
		t.Fatalf("%T has no AfterFunc method", j.ctx)
	}
	ran, stopped := make(chan struct{}), make(chan struct{}, 1)
	a.AfterFunc(func() { close(ran) })
	stop := a.AfterFunc(func() { stopped <- struct{}{} })
	if !stop() {
		t.Error("stop() before the end = false; want true")
	}
	j.end()
	recv(t, ran, "AfterFunc after the job ended")
	if stop() {
		t.Error("stop() after the end = true; want false")
	}
	select {
	case <-stopped:
		t.Error("a stopped AfterFunc ran")
	default:
	}
	again := make(chan struct{})
	if a.AfterFunc(func() { close(again) })() {
		t.Error("stop() of an AfterFunc on an ended context = true; want false")
	}
	recv(t, again, "AfterFunc on an ended context")
}
