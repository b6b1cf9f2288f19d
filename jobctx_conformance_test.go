package workpool_test

// A conformance suite for job contexts: the Go standard library's own
// context tests ($(go env GOROOT)/src/context/x_test.go, context_test.go and
// afterfunc_test.go) that make sense with a job's context as the parent,
// ported here with the original test's name in a comment. "Cancelling the
// parent" becomes each way a job's context ends: its handler returns, its
// job timeout passes, the pool stops hard, the base context is cancelled
// with a cause. The suite runs with the default options (job timeout on)
// and with WithJobTimeout(0), where jobs share the pool's run context and
// only a hard stop or the base context ends it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/workpool-go/workpool"
)

const (
	shortDuration    = time.Millisecond // as in the context package's tests
	veryLongDuration = 1000 * time.Hour
	// jobTimeoutEnd is the job timeout of the "job timeout" ending: long
	// enough for a test to set up its children first, even under -race.
	jobTimeoutEnd = 500 * time.Millisecond
)

// strKey is the ported tests' value key type (theirs use strings).
type strKey string

// ctxModes are the configurations the suite runs under.
var ctxModes = []struct {
	name string
	opts []workpool.Option
}{
	{"default", nil},
	{"no-timeout", []workpool.Option{workpool.WithJobTimeout(0)}},
}

// with returns opts followed by more, in a new slice.
func with(opts []workpool.Option, more ...workpool.Option) []workpool.Option {
	return append(append([]workpool.Option(nil), opts...), more...)
}

// jobRun is a job held running on a one-worker pool, its context exposed.
type jobRun struct {
	t        *testing.T
	p        *workpool.Pool[int]
	ctx      context.Context
	release  chan struct{}
	next     chan struct{}
	released bool
}

// startJob starts a pool with opts and one job that waits for end; the job
// ignores its context, so only the pool can end it.
func startJob(t *testing.T, opts ...workpool.Option) *jobRun {
	t.Helper()
	j := &jobRun{t: t, release: make(chan struct{}), next: make(chan struct{}, 1)}
	ctxs := make(chan context.Context, 1)
	j.p = newPool(t, func(ctx context.Context, n int) error {
		if n == 0 {
			ctxs <- ctx
			<-j.release
			return nil
		}
		j.next <- struct{}{}
		return nil
	}, with([]workpool.Option{workpool.WithWorkers(1), workpool.OnError(func(int, error) {})}, opts...)...)
	t.Cleanup(j.letGo) // runs before newPool's Shutdown
	j.p.Start()
	if err := j.p.Submit(0); err != nil {
		t.Fatal(err)
	}
	j.ctx = recv(t, ctxs, "the job to start")
	return j
}

func (j *jobRun) letGo() {
	if !j.released {
		j.released = true
		close(j.release)
	}
}

// end lets the handler return and waits until the worker has run the job's
// end: the next job on the same worker has started.
func (j *jobRun) end() {
	j.t.Helper()
	j.letGo()
	if err := j.p.Submit(1); err != nil {
		j.t.Fatal(err)
	}
	recv(j.t, j.next, "the next job")
}

// stopHard stops the pool hard while the job runs: Shutdown's ctx has ended.
func (j *jobRun) stopHard() {
	j.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.p.Shutdown(ctx); err != context.Canceled {
		j.t.Fatalf("Shutdown with an ended ctx = %v; want Canceled", err)
	}
}

// ending is one way a running job's context ends.
type ending struct {
	name     string
	timedOut bool // needs the job timeout on
	// sync says the context and its children have ended when end returns;
	// otherwise end waits only for the job context's Done.
	sync  bool
	err   error // the job context's Err after it
	cause error // and its Cause
	start func(t *testing.T, opts []workpool.Option) (j *jobRun, end func())
}

var errBaseCause = errors.New("the base's cause")

var endings = []ending{
	{name: "handler-returns", timedOut: true, sync: true, err: context.Canceled, cause: context.Canceled,
		start: func(t *testing.T, opts []workpool.Option) (*jobRun, func()) {
			j := startJob(t, opts...)
			return j, j.end
		}},
	{name: "job-timeout", timedOut: true, err: context.DeadlineExceeded, cause: context.DeadlineExceeded,
		start: func(t *testing.T, opts []workpool.Option) (*jobRun, func()) {
			j := startJob(t, with(opts, workpool.WithJobTimeout(jobTimeoutEnd))...)
			return j, func() { recv(t, j.ctx.Done(), "the job timeout") }
		}},
	{name: "stop-hard", sync: true, err: context.Canceled, cause: context.Canceled,
		start: func(t *testing.T, opts []workpool.Option) (*jobRun, func()) {
			j := startJob(t, opts...)
			return j, j.stopHard
		}},
	{name: "base-cancel", sync: true, err: context.Canceled, cause: errBaseCause,
		start: func(t *testing.T, opts []workpool.Option) (*jobRun, func()) {
			base, cancel := context.WithCancelCause(context.Background())
			t.Cleanup(func() { cancel(nil) })
			j := startJob(t, with(opts, workpool.WithContext(base))...)
			return j, func() { cancel(errBaseCause) }
		}},
}

// forEachEnding runs f for each mode and each ending that applies to it.
func forEachEnding(t *testing.T, f func(t *testing.T, e ending, opts []workpool.Option)) {
	for _, m := range ctxModes {
		for _, e := range endings {
			if e.timedOut && m.name == "no-timeout" {
				continue
			}
			t.Run(m.name+"/"+e.name, func(t *testing.T) { f(t, e, m.opts) })
		}
	}
}

// forEachMode runs f for each mode.
func forEachMode(t *testing.T, f func(t *testing.T, opts []workpool.Option)) {
	for _, m := range ctxModes {
		t.Run(m.name, func(t *testing.T) { f(t, m.opts) })
	}
}

// ended checks that ctx is done with err: at once if sync, else within a
// generous bound.
func ended(t *testing.T, ctx context.Context, name string, err error, sync bool) {
	t.Helper()
	if sync {
		select {
		case <-ctx.Done():
		default:
			t.Errorf("<-%s.Done() blocked, but shouldn't have", name)
			return
		}
	} else {
		recv(t, ctx.Done(), name+" to end")
	}
	if e := ctx.Err(); e != err {
		t.Errorf("%s.Err() == %v want %v", name, e, err)
	}
}

func notDone(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	select {
	case x := <-ctx.Done():
		t.Errorf("<-%s.Done() == %v want nothing (it should block)", name, x)
	default:
	}
	if e := ctx.Err(); e != nil {
		t.Errorf("%s.Err() == %v want nil", name, e)
	}
}

// Ported from XTestParentFinishesChild (context_test.go).
func TestJobContextParentFinishesChild(t *testing.T) {
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		j, end := e.start(t, opts)
		parent := j.ctx
		// Context tree:
		// parent -> cancelChild
		// parent -> valueChild -> timerChild
		// parent -> afterChild
		// parent -> cancelChild -> grandchild
		cancelChild, stop := context.WithCancel(parent)
		defer stop()
		valueChild := context.WithValue(parent, strKey("key"), "value")
		timerChild, stop := context.WithTimeout(valueChild, veryLongDuration)
		defer stop()
		afterRan := make(chan struct{})
		afterStop := context.AfterFunc(parent, func() { close(afterRan) })
		defer afterStop()
		grandchild, stopCause := context.WithCancelCause(cancelChild)
		defer stopCause(nil)

		for name, c := range map[string]context.Context{"parent": parent, "cancelChild": cancelChild,
			"valueChild": valueChild, "timerChild": timerChild, "grandchild": grandchild} {
			notDone(t, c, name)
		}

		end()

		// parent and children should all be finished.
		ended(t, parent, "parent", e.err, e.sync)
		ended(t, cancelChild, "cancelChild", e.err, e.sync)
		ended(t, valueChild, "valueChild", e.err, e.sync)
		ended(t, timerChild, "timerChild", e.err, e.sync)
		ended(t, grandchild, "grandchild", e.err, e.sync)
		for name, c := range map[string]context.Context{"parent": parent, "cancelChild": cancelChild,
			"timerChild": timerChild, "grandchild": grandchild} {
			if got := context.Cause(c); got != e.cause {
				t.Errorf("Cause(%s) = %v want %v", name, got, e.cause)
			}
		}
		recv(t, afterRan, "the AfterFunc")
		if afterStop() {
			t.Errorf("afterStop() = true after the parent ended, want false")
		}

		// WithValue and WithCancel of an ended parent are ended.
		precanceledChild := context.WithValue(parent, strKey("key"), "value")
		ended(t, precanceledChild, "precanceledChild", e.err, true)
		precanceled, stop := context.WithCancel(parent)
		defer stop()
		ended(t, precanceled, "precanceled WithCancel", e.err, true)
		if got := context.Cause(precanceled); got != e.cause {
			t.Errorf("Cause(precanceled) = %v want %v", got, e.cause)
		}
	})
}

// Ported from XTestChildFinishesFirst (context_test.go).
func TestJobContextChildFinishesFirst(t *testing.T) {
	forEachMode(t, func(t *testing.T, opts []workpool.Option) {
		j := startJob(t, opts...)
		parent := j.ctx
		child, cancel := context.WithCancel(parent)
		notDone(t, parent, "parent")
		notDone(t, child, "child")
		cancel()
		ended(t, child, "child", context.Canceled, true)
		// parent should not be finished.
		notDone(t, parent, "parent")
	})
}

// Ported from TestWithCancelCanceledParent (x_test.go), for every ending.
func TestJobContextWithCancelCanceledParent(t *testing.T) {
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		j, end := e.start(t, opts)
		end()
		if !e.sync {
			recv(t, j.ctx.Done(), "the job's context to end")
		}
		c, stop := context.WithCancel(j.ctx)
		defer stop()
		select {
		case <-c.Done():
		default:
			t.Errorf("child not done immediately upon construction")
		}
		if got, want := c.Err(), e.err; got != want {
			t.Errorf("child not canceled; got = %v, want = %v", got, want)
		}
		if got, want := context.Cause(c), e.cause; got != want {
			t.Errorf("child has wrong cause; got = %v, want = %v", got, want)
		}
	})
}

// Ported from TestWithCancelSimultaneouslyCanceledParent (x_test.go): the
// base context is cancelled, or the pool stopped hard, while a child is
// being derived.
func TestJobContextWithCancelSimultaneouslyCanceledParent(t *testing.T) {
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		if !e.sync || e.name == "handler-returns" {
			t.Skip("needs an ending that can run beside the job")
		}
		for range 20 {
			j, end := e.start(t, opts)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if e.name == "stop-hard" {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					_ = j.p.Shutdown(ctx)
					return
				}
				end()
			}()
			c, stop := context.WithCancel(j.ctx)
			recv(t, c.Done(), "the child to end")
			if got, want := c.Err(), e.err; got != want {
				t.Errorf("child not canceled; got = %v, want = %v", got, want)
			}
			if got, want := context.Cause(c), e.cause; got != want {
				t.Errorf("child has wrong cause; got = %v, want = %v", got, want)
			}
			stop()
			recv(t, done, "the ending")
			j.letGo()
		}
	})
}

// Ported from TestDeadline and TestTimeout (x_test.go): WithDeadline and
// WithTimeout of a job's context, earlier and later than the job's deadline.
func TestJobContextDeadline(t *testing.T) {
	forEachMode(t, func(t *testing.T, opts []workpool.Option) {
		j := startJob(t, opts...)
		jobDeadline, hasDeadline := j.ctx.Deadline()
		if timeoutOn := len(opts) == 0; hasDeadline != timeoutOn {
			t.Fatalf("job Deadline() has deadline %v; want %v", hasDeadline, timeoutOn)
		}

		c, stop := context.WithDeadline(j.ctx, time.Now().Add(shortDuration))
		defer stop()
		if got, prefix := fmt.Sprint(c), ctxName(j.ctx); !strings.HasPrefix(got, prefix) || !strings.Contains(got, ".WithDeadline(") {
			t.Errorf("c.String() = %q want prefix %q", got, prefix)
		}
		testDeadline(t, c, "WithDeadline")

		c, stop = context.WithTimeout(j.ctx, shortDuration)
		defer stop()
		testDeadline(t, c, "WithTimeout")

		c, stop = context.WithDeadline(j.ctx, time.Now().Add(-shortDuration))
		defer stop()
		testDeadline(t, c, "WithDeadline+inthepast")

		// A later deadline than the job's is the job's.
		c, stop = context.WithDeadline(j.ctx, time.Now().Add(veryLongDuration))
		defer stop()
		if d, ok := c.Deadline(); hasDeadline && (!ok || !d.Equal(jobDeadline)) {
			t.Errorf("WithDeadline(job, far).Deadline() = %v, %v; want the job's %v", d, ok, jobDeadline)
		}
		notDone(t, c, "WithDeadline(job, far)")
		notDone(t, j.ctx, "the job's context") // children timing out do not end it
	})
}

// ctxName is c's String up to the time left, which changes from call to
// call (as context.WithDeadline's does): what its children's names start
// with.
func ctxName(c context.Context) string {
	name, _, _ := strings.Cut(fmt.Sprint(c), " [")
	return name
}

func testDeadline(t *testing.T, c context.Context, name string) {
	t.Helper()
	select {
	case <-time.After(waitFor):
		t.Fatalf("%s: context not timed out after %v", name, waitFor)
	case <-c.Done():
	}
	if e := c.Err(); e != context.DeadlineExceeded {
		t.Errorf("%s: c.Err() == %v; want %v", name, e, context.DeadlineExceeded)
	}
}

// Ported from TestCanceledTimeout (x_test.go).
func TestJobContextCanceledTimeout(t *testing.T) {
	forEachMode(t, func(t *testing.T, opts []workpool.Option) {
		j := startJob(t, opts...)
		c, cancel := context.WithTimeout(j.ctx, veryLongDuration)
		cancel() // Should propagate synchronously.
		ended(t, c, "c", context.Canceled, true)
		notDone(t, j.ctx, "the job's context")
	})
}

// Ported from TestValues (x_test.go), on a job's context: the base's values
// show through it and through its children.
func TestJobContextValues(t *testing.T) {
	type key1 int
	type key2 int
	k1, k2, k3 := key1(1), key2(1), key2(3)
	forEachMode(t, func(t *testing.T, opts []workpool.Option) {
		base := context.WithValue(context.Background(), k1, "base-k1")
		j := startJob(t, with(opts, workpool.WithContext(base))...)
		check := func(c context.Context, nm, v1, v2, v3 string) {
			t.Helper()
			for _, kv := range []struct {
				k    any
				want string
			}{{k1, v1}, {k2, v2}, {k3, v3}} {
				got, _ := c.Value(kv.k).(string)
				if got != kv.want {
					t.Errorf("%s: c.Value(%v) = %q want %q", nm, kv.k, got, kv.want)
				}
			}
		}
		check(j.ctx, "job", "base-k1", "", "")
		c1 := context.WithValue(j.ctx, k1, "c1k1")
		check(c1, "c1", "c1k1", "", "")
		c2 := context.WithValue(c1, k2, "c2k2")
		check(c2, "c2", "c1k1", "c2k2", "")
		c3 := context.WithValue(c2, k3, "c3k3")
		check(c3, "c3", "c1k1", "c2k2", "c3k3")
		c4, stop := context.WithCancel(c3)
		defer stop()
		check(c4, "c4", "c1k1", "c2k2", "c3k3")
		j.stopHard()
		check(j.ctx, "job after a hard stop", "base-k1", "", "")
		check(c4, "c4 after a hard stop", "c1k1", "c2k2", "c3k3")
	})
}

// Ported from TestLayersCancel and TestLayersTimeout (x_test.go): random
// layers of values, cancels and timeouts over a job's context.
func TestJobContextLayers(t *testing.T) {
	for _, timeout := range []bool{false, true} {
		forEachMode(t, func(t *testing.T, opts []workpool.Option) {
			j := startJob(t, opts...)
			seed := time.Now().UnixNano()
			r := rand.New(rand.NewSource(seed))
			errorf := func(format string, a ...any) { t.Errorf(fmt.Sprintf("seed=%d ", seed)+format, a...) }
			type value int
			var (
				vals      []*value
				cancels   []context.CancelFunc
				numTimers int
				ctx       = j.ctx
			)
			for i := 0; i < 30 || numTimers == 0 || len(cancels) == 0 || len(vals) == 0; i++ {
				switch r.Intn(3) {
				case 0:
					v := new(value)
					ctx = context.WithValue(ctx, v, v)
					vals = append(vals, v)
				case 1:
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					cancels = append(cancels, cancel)
				case 2:
					var cancel context.CancelFunc
					d := veryLongDuration
					if timeout {
						d = shortDuration
					}
					ctx, cancel = context.WithTimeout(ctx, d)
					cancels = append(cancels, cancel)
					numTimers++
				}
			}
			defer func() {
				for _, c := range cancels {
					c()
				}
			}()
			checkValues := func(when string) {
				for _, key := range vals {
					if val := ctx.Value(key).(*value); key != val {
						errorf("%s: ctx.Value(%p) = %p want %p", when, key, val, key)
					}
				}
			}
			if !timeout {
				select {
				case <-ctx.Done():
					errorf("ctx should not be canceled yet")
				default:
				}
			}
			if s, prefix := fmt.Sprint(ctx), ctxName(j.ctx); !strings.HasPrefix(s, prefix) {
				t.Errorf("ctx.String() = %q want prefix %q", s, prefix)
			}
			checkValues("before cancel")
			if timeout {
				recv(t, ctx.Done(), "ctx to time out")
				checkValues("after timeout")
			} else {
				cancels[r.Intn(len(cancels))]()
				select {
				case <-ctx.Done():
				default:
					errorf("ctx should be canceled")
				}
				checkValues("after cancel")
			}
			notDone(t, j.ctx, "the job's context")
		})
	}
}

// Ported from TestCause (x_test.go), the cases with a parent that can end:
// the job's context in place of the parent.
func TestJobContextCause(t *testing.T) {
	childCause := errors.New("childCause")
	tooSlow := errors.New("tooSlow")
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		t.Run("parent cause before child", func(t *testing.T) {
			j, end := e.start(t, opts)
			ctx, cancelChild := context.WithCancelCause(j.ctx)
			end()
			recv(t, ctx.Done(), "the child to end")
			cancelChild(childCause)
			if err, cause := ctx.Err(), context.Cause(ctx); err != e.err || cause != e.cause {
				t.Errorf("Err, Cause = %v, %v; want %v, %v", err, cause, e.err, e.cause)
			}
		})
		t.Run("parent cause after child", func(t *testing.T) {
			j, end := e.start(t, opts)
			ctx, cancelChild := context.WithCancelCause(j.ctx)
			cancelChild(childCause)
			end()
			if err, cause := ctx.Err(), context.Cause(ctx); err != context.Canceled || cause != childCause {
				t.Errorf("Err, Cause = %v, %v; want Canceled, %v", err, cause, childCause)
			}
		})
		t.Run("WithTimeoutCause", func(t *testing.T) {
			j, end := e.start(t, opts)
			ctx, cancel := context.WithTimeoutCause(j.ctx, shortDuration, tooSlow)
			defer cancel()
			recv(t, ctx.Done(), "the child's timeout")
			end()
			if err, cause := ctx.Err(), context.Cause(ctx); err != context.DeadlineExceeded || cause != tooSlow {
				t.Errorf("Err, Cause = %v, %v; want DeadlineExceeded, %v", err, cause, tooSlow)
			}
		})
		t.Run("job context", func(t *testing.T) {
			j, end := e.start(t, opts)
			if c := context.Cause(j.ctx); c != nil {
				t.Errorf("Cause of a live job context = %v; want nil", c)
			}
			end()
			recv(t, j.ctx.Done(), "the job's context to end")
			if err, cause := j.ctx.Err(), context.Cause(j.ctx); err != e.err || cause != e.cause {
				t.Errorf("Err, Cause = %v, %v; want %v, %v", err, cause, e.err, e.cause)
			}
		})
	})
}

// Ported from TestCauseRace (x_test.go): Cause polled while the base
// context is cancelled with a cause.
func TestJobContextCauseRace(t *testing.T) {
	forEachMode(t, func(t *testing.T, opts []workpool.Option) {
		base, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		j := startJob(t, with(opts, workpool.WithContext(base))...)
		go cancel(errBaseCause)
		for {
			if err := context.Cause(j.ctx); err != nil {
				if err != errBaseCause {
					t.Errorf("Cause returned %v, want %v", err, errBaseCause)
				}
				break
			}
			runtime.Gosched()
		}
	})
}

// Ported from TestAfterFuncCalledAfterCancel, TestAfterFuncCalledImmediately
// and TestAfterFuncNotCalledAfterStop (x_test.go), for every ending.
func TestJobContextAfterFunc(t *testing.T) {
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		t.Run("CalledAfterCancel", func(t *testing.T) {
			j, end := e.start(t, opts)
			donec := make(chan struct{})
			stop := context.AfterFunc(j.ctx, func() { close(donec) })
			select {
			case <-donec:
				t.Fatalf("AfterFunc called before context is done")
			case <-time.After(shortDuration):
			}
			end()
			recv(t, donec, "AfterFunc after the context ended")
			if stop() {
				t.Fatalf("stop() = true, want false")
			}
		})
		t.Run("CalledImmediately", func(t *testing.T) {
			j, end := e.start(t, opts)
			end()
			recv(t, j.ctx.Done(), "the job's context to end")
			donec := make(chan struct{})
			context.AfterFunc(j.ctx, func() { close(donec) })
			recv(t, donec, "AfterFunc for an already-ended context")
		})
		t.Run("NotCalledAfterStop", func(t *testing.T) {
			j, end := e.start(t, opts)
			donec := make(chan struct{})
			stop := context.AfterFunc(j.ctx, func() { close(donec) })
			if !stop() {
				t.Fatalf("stop() = false, want true")
			}
			end()
			recv(t, j.ctx.Done(), "the job's context to end")
			select {
			case <-donec:
				t.Fatalf("AfterFunc called after stop")
			case <-time.After(shortDuration):
			}
			if stop() {
				t.Fatalf("stop() = true, want false")
			}
		})
		// Ending the context does not wait for AfterFuncs (the worker is
		// not held up by one).
		t.Run("CalledAsynchronously", func(t *testing.T) {
			j, end := e.start(t, opts)
			donec := make(chan struct{})
			stop := context.AfterFunc(j.ctx, func() { donec <- struct{}{} })
			defer stop()
			end()
			recv(t, donec, "AfterFunc after the context ended")
		})
	})
}

// Ported from TestContextErrDoneRace (x_test.go): once Err is non-nil, Done
// is closed, whether or not Done was taken before the end.
func TestJobContextErrDoneRace(t *testing.T) {
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		if e.name == "handler-returns" {
			t.Skip("the handler's return cannot race its own Err")
		}
		rounds := 5
		if e.name == "job-timeout" {
			rounds = 1 // each round waits for the timeout
		}
		for _, takeDone := range []bool{true, false} {
			for range rounds {
				j, end := e.start(t, opts)
				var donec <-chan struct{}
				if takeDone {
					donec = j.ctx.Done()
				}
				go func() {
					if e.name == "stop-hard" {
						ctx, cancel := context.WithCancel(context.Background())
						cancel()
						_ = j.p.Shutdown(ctx)
						return
					}
					if e.name == "base-cancel" {
						end()
					}
				}()
				for j.ctx.Err() == nil {
					runtime.Gosched()
				}
				if !takeDone {
					donec = j.ctx.Done()
				}
				select {
				case <-donec:
				default:
					t.Fatalf("ctx.Err is non-nil, but ctx.Done is not closed")
				}
				j.letGo()
			}
		}
	})
}

// Ported from TestWithoutCancel (x_test.go): a job's context without its
// cancellation keeps the values and never ends.
func TestJobContextWithoutCancel(t *testing.T) {
	forEachMode(t, func(t *testing.T, opts []workpool.Option) {
		base := context.WithValue(context.Background(), strKey("key"), "value")
		j := startJob(t, with(opts, workpool.WithContext(base))...)
		ctx := context.WithoutCancel(j.ctx)
		j.stopHard()
		if d, ok := ctx.Deadline(); !d.IsZero() || ok {
			t.Errorf("ctx.Deadline() = %v, %v want zero, false", d, ok)
		}
		if done := ctx.Done(); done != nil {
			t.Errorf("ctx.Done() = %v want nil", done)
		}
		if err := ctx.Err(); err != nil {
			t.Errorf("ctx.Err() = %v want nil", err)
		}
		if v := ctx.Value(strKey("key")); v != "value" {
			t.Errorf("ctx.Value(%q) = %q want %q", "key", v, "value")
		}
	})
}

// Ported from TestDeadlineExceededSupportsTimeout (x_test.go): a job's
// timeout error says it is a timeout.
func TestJobContextDeadlineExceededSupportsTimeout(t *testing.T) {
	j := startJob(t, workpool.WithJobTimeout(shortDuration))
	recv(t, j.ctx.Done(), "the job timeout")
	i, ok := j.ctx.Err().(interface{ Timeout() bool })
	if !ok {
		t.Fatal("DeadlineExceeded does not support Timeout interface")
	}
	if !i.Timeout() {
		t.Fatal("wrong value for timeout")
	}
}

// The job's context through the standard library's consumers: an
// errgroup's context and an HTTP request end with the job.
func TestJobContextThroughConsumers(t *testing.T) {
	forEachEnding(t, func(t *testing.T, e ending, opts []workpool.Option) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // answers only once the client gave up
		}))
		defer srv.Close()
		defer srv.Client().CloseIdleConnections()

		j, end := e.start(t, opts)
		g, gctx := errgroup.WithContext(j.ctx)
		g.Go(func() error { <-gctx.Done(); return gctx.Err() })
		httpErr := make(chan error, 1)
		go func() {
			req, err := http.NewRequestWithContext(j.ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				httpErr <- err
				return
			}
			resp, err := srv.Client().Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			httpErr <- err
		}()
		end()
		if err := g.Wait(); err != e.err {
			t.Errorf("errgroup: %v; want %v", err, e.err)
		}
		// net/http reports the context's cause.
		if err := recv(t, httpErr, "the HTTP request"); !errors.Is(err, e.cause) {
			t.Errorf("client.Do: %v; want an error wrapping %v", err, e.cause)
		}
	})
}
