package workpool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCancelCtxKeyLearnt: the probe found the context package's key, and it
// is the one its cancelable contexts answer to (else Cause and the direct
// registration of children would silently degrade).
func TestCancelCtxKeyLearnt(t *testing.T) {
	if cancelCtxKey == nil {
		t.Fatal("cancelCtxKey was not learnt from context.Cause")
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	if ctx.Value(cancelCtxKey) == nil {
		t.Fatal("a cancelable context does not answer to cancelCtxKey")
	}
	cause := errors.New("cause")
	cancel(cause)
	// Cause finds the cause through the key, via a job context ended by it.
	home := &ctxHome{base: ctx, baseDone: ctx.Done(), run: ctx, epoch: time.Now()}
	c := (&ctxSource{home: home}).next(int64(time.Hour))
	if got := context.Cause(c); got != cause {
		t.Errorf("Cause of a job context whose base ended = %v; want %v", got, cause)
	}
}

func newTestSource(base context.Context) *ctxSource {
	return &ctxSource{home: &ctxHome{base: base, run: base, epoch: time.Now()}}
}

// TestJobCtxFreshPerJob: every job gets a context of its own, ending one
// does not touch the next, and a slab's contexts are all distinct.
func TestJobCtxFreshPerJob(t *testing.T) {
	o := newTestSource(context.Background())
	seen := make(map[*jobCtx]bool)
	var prev *jobCtx
	for i := range 3 * ctxSlab {
		c := o.next(int64(time.Hour))
		if seen[c] {
			t.Fatalf("job %d got a context handed out before", i)
		}
		seen[c] = true
		if c.Err() != nil || c.state.Load() != 0 {
			t.Fatalf("job %d: fresh context not live: Err %v, state %d", i, c.Err(), c.state.Load())
		}
		if i%2 == 0 {
			_ = c.Done() // watch every other one
		}
		c.finish(o.home.now())
		if c.Err() != context.Canceled {
			t.Fatalf("job %d: Err after finish = %v; want Canceled", i, c.Err())
		}
		if prev != nil && prev.Err() != context.Canceled {
			t.Fatalf("job %d: the previous job's context came back: %v", i, prev.Err())
		}
		prev = c
	}
}

// TestJobCtxFinishPastDeadline: a job that returns after its deadline,
// without anyone having asked, leaves its context DeadlineExceeded, as the
// timer of context.WithTimeout would have.
func TestJobCtxFinishPastDeadline(t *testing.T) {
	o := newTestSource(context.Background())
	c := o.next(100)
	c.finish(100)
	if c.Err() != context.DeadlineExceeded {
		t.Errorf("Err = %v; want DeadlineExceeded", c.Err())
	}
	if context.Cause(c) != context.DeadlineExceeded {
		t.Errorf("Cause = %v; want DeadlineExceeded", context.Cause(c))
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done open")
	}
}

// TestJobCtxAllocs: an unwatched job context costs no allocation beyond
// its share of a slab (1/ctxSlab).
func TestJobCtxAllocs(t *testing.T) {
	o := newTestSource(context.Background())
	const jobs = 10 * ctxSlab
	n := testing.AllocsPerRun(5, func() {
		for range jobs {
			c := o.next(int64(time.Hour))
			_ = c.Err()
			_, _ = c.Deadline()
			c.finish(o.home.now())
		}
	})
	if perJob := n / jobs; perJob > 1.0/ctxSlab {
		t.Errorf("%.4f allocations per unwatched job; want at most %.4f", perJob, 1.0/ctxSlab)
	}
}

// TestJobCtxStopCodes: after a hard stop an unwatched context ends with the
// stop's error, unless its deadline came first.
func TestJobCtxStopCodes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      uint32
		deadline  int64 // pool clock; the stop is at about now
		wantErr   error
		baseEnded bool
	}{
		{"shutdown deadline", endCanceled, int64(time.Hour), context.Canceled, false},
		{"base ended", endBase, int64(time.Hour), context.Canceled, true},
		{"job deadline first", endCanceled, 1, context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := newTestSource(base)
			c := o.next(tc.deadline)
			if tc.baseEnded {
				cancel()
			}
			o.home.markStopped(tc.code)
			if err := c.Err(); err != tc.wantErr {
				t.Errorf("Err = %v; want %v", err, tc.wantErr)
			}
			c.finish(o.home.now())
			if err := c.Err(); err != tc.wantErr {
				t.Errorf("Err after finish = %v; want %v", err, tc.wantErr)
			}
		})
	}
}

// TestJobCtxValueBeforeErr: context.Cause may ask Value before Err (it did
// before Go 1.26): an unwatched context whose base ended with a cause must
// answer with the base's cancelable context even if nobody asked Err yet.
func TestJobCtxValueBeforeErr(t *testing.T) {
	base, cancel := context.WithCancelCause(context.Background())
	o := newTestSource(base)
	o.home.baseDone = base.Done()
	c := o.next(int64(time.Hour))
	cause := errors.New("cause")
	cancel(cause)
	v, ok := c.Value(cancelCtxKey).(context.Context)
	if !ok || context.Cause(v) != cause {
		t.Errorf("Value(cancelCtxKey) before Err = %v; want the base's cancelable context", v)
	}
	if err := c.Err(); err != context.Canceled {
		t.Errorf("Err = %v; want Canceled", err)
	}
}
