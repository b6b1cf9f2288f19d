package workpool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestCoarseClockUsed(t *testing.T) {
	h := func(context.Context, int) error { return nil }
	tests := []struct {
		name string
		opts []Option
		want bool
	}{
		{"default timeout", nil, true},
		{"shortest coarse timeout", []Option{WithJobTimeout(minCoarseTimeout)}, true},
		{"shorter timeout", []Option{WithJobTimeout(minCoarseTimeout - 1)}, false},
		{"no timeout", []Option{WithJobTimeout(0)}, false},
		{"metrics with durations", []Option{WithMetrics(timedNop{})}, false},
	}
	for _, tt := range tests {
		p, err := New(h, tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.coarse != nil; got != tt.want {
			t.Errorf("%s: coarse clock used = %v; want %v", tt.name, got, tt.want)
		}
		p.Shutdown(context.Background())
	}
}

// TestCoarseClockDeadlines: on the coarse clock, a job's deadline is still
// at least the timeout after its real start, also after the pool was idle
// long enough for the timer to suspend; a job that returns before its
// deadline is not a timeout and one that returns after it is.
func TestCoarseClockDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		type run struct {
			start    time.Time
			deadline time.Time
			err      error
		}
		var mu sync.Mutex
		runs := map[int]*run{}
		p := startCoarse(t, func(ctx context.Context, d int) error {
			r := &run{start: time.Now()}
			r.deadline, _ = ctx.Deadline()
			time.Sleep(time.Duration(d) * time.Millisecond) // ignores ctx, as a stuck call would
			mu.Lock()
			runs[d] = r
			mu.Unlock()
			return nil
		}, WithWorkers(1), WithJobTimeout(timeout), OnError(func(d int, err error) {
			mu.Lock()
			runs[d].err = err
			mu.Unlock()
		}))
		c := p.coarse
		defer p.Shutdown(context.Background())

		// Jobs of 1ms, 100ms, 29.9s (just under the timeout), 31s (past the
		// deadline: timeout + slack is 30.47s), each after an idle pause of
		// 10s, in which the timer suspends.
		for _, d := range []int{1, 100, 29_900, 31_000, 2} {
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if !c.stale.Load() {
				t.Errorf("before job %dms: the clock still ticks on an idle pool", d)
			}
			if err := p.Submit(d); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if d > 1000 && c.stale.Load() {
				t.Errorf("during job %dms: the clock is suspended while a job runs", d)
			}
			time.Sleep(time.Duration(d)*time.Millisecond + time.Millisecond)
			synctest.Wait()
		}
		mu.Lock()
		defer mu.Unlock()
		for d, r := range runs {
			if min := r.start.Add(timeout); r.deadline.Before(min) {
				t.Errorf("job %dms: deadline %v after its start; want at least %v", d, r.deadline.Sub(r.start), timeout)
			}
			if max := r.start.Add(timeout + deadlineSlack(timeout)); r.deadline.After(max) {
				t.Errorf("job %dms: deadline %v after its start; want at most %v", d, r.deadline.Sub(r.start), timeout+deadlineSlack(timeout))
			}
			wantTimeout := d == 31_000
			if got := errors.Is(r.err, ErrJobTimeout); got != wantTimeout {
				t.Errorf("job %dms: error %v; want timeout %v", d, r.err, wantTimeout)
			}
		}
		if len(runs) != 5 {
			t.Errorf("%d jobs ran; want 5", len(runs))
		}
	})
}

// TestCoarseClockTicksWhileBusy: while a job runs, the coarse clock stays
// within a tick of the real one; after Shutdown the timer is stopped.
func TestCoarseClockTicksWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := startCoarse(t, func(ctx context.Context, _ int) error { <-release; return nil }, WithWorkers(2))
		c := p.coarse
		if err := p.Submit(1); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			time.Sleep(c.tick * 3 / 2)
			synctest.Wait()
			if c.stale.Load() {
				t.Fatal("the clock suspended while a job runs")
			}
			if lag := p.clock() - c.now.Load(); lag < 0 || lag > int64(c.tick) {
				t.Fatalf("coarse clock %v behind the real one; want within a tick (%v)", time.Duration(lag), c.tick)
			}
		}
		close(release)
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		stopped := c.stopped && (c.timer == nil || !c.timer.Stop())
		c.mu.Unlock()
		if !stopped {
			t.Error("the clock's timer is still armed after Shutdown")
		}
	})
}

// TestCoarseClockBusyDeadlines: while the timer ticks (another job keeps the
// pool busy), a job started just before a tick, when the coarse clock is
// furthest behind, still gets at least the timeout from its real start.
func TestCoarseClockBusyDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		release := make(chan struct{})
		type run struct{ start, deadline time.Time }
		runs := make(chan run, 100)
		p := startCoarse(t, func(ctx context.Context, n int) error {
			if n < 0 {
				<-release
				return nil
			}
			dl, _ := ctx.Deadline()
			runs <- run{time.Now(), dl}
			return nil
		}, WithWorkers(2), WithJobTimeout(timeout))
		tick := p.coarse.tick
		if err := p.Submit(-1); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			// Offsets from just after a tick to just before the next.
			time.Sleep(tick + tick*time.Duration(i)/20)
			synctest.Wait()
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		close(release)
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		close(runs)
		n := 0
		for r := range runs {
			n++
			if got := r.deadline.Sub(r.start); got < timeout || got > timeout+deadlineSlack(timeout) {
				t.Errorf("deadline %v after the job's start; want within [%v, %v]", got, timeout, timeout+deadlineSlack(timeout))
			}
		}
		if n != 20 {
			t.Errorf("%d jobs ran; want 20", n)
		}
	})
}

// TestCoarseClockJobEnd: the end of a job is the coarse time only while the
// timer runs, the job's context has not ended and is not watched, and the
// coarse clock shows less than half the timeout used; otherwise it is the
// real time.
func TestCoarseClockJobEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New(func(context.Context, int) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		defer p.Shutdown(context.Background())
		c := p.coarse
		time.Sleep(time.Hour)
		real := p.clock()
		tick := int64(c.tick)
		coarse := real - tick/2 // half a tick behind
		c.now.Store(coarse)
		half := int64(p.timeout / 2)
		for _, tt := range []struct {
			name  string
			dl    int64
			state uint32
			stale bool
			want  int64
		}{
			{"deadline far ahead", coarse + half + 1, 0, false, coarse},
			{"half the timeout used", coarse + half, 0, false, real},
			{"deadline just passed", real - 1, 0, false, real},
			{"timer suspended", coarse + 10*half, 0, true, real},
			{"context ended", coarse + 10*half, endDeadline, false, real},
			{"context watched", coarse + 10*half, stWatched, false, real},
		} {
			c.stale.Store(tt.stale)
			jc := &jobCtx{home: p.home, dl: tt.dl}
			jc.state.Store(tt.state)
			if got := p.jobEnd(jc); got != tt.want {
				t.Errorf("%s: jobEnd = %d; want %d", tt.name, got, tt.want)
			}
		}
	})
}

// TestCoarseClockLateTimer: when the timer falls far behind (here it is
// stopped, as in a process frozen across the deadline), a job whose handler
// saw its deadline pass still counts as timed out, even if it returns nil.
func TestCoarseClockLateTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		var gotErr error
		p := startCoarse(t, func(ctx context.Context, _ int) error {
			time.Sleep(timeout + time.Second)
			if ctx.Err() == nil { // the handler looks, sees the deadline passed, and returns nil
				t.Error("ctx.Err() = nil after the deadline")
			}
			return nil
		}, WithWorkers(1), WithJobTimeout(timeout), WithShutdownTimeout(time.Minute),
			OnError(func(_ int, err error) { gotErr = err }))
		if err := p.Submit(1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		c := p.coarse
		c.mu.Lock()
		c.timer.Stop() // the timer is late for the whole job
		c.mu.Unlock()
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := p.Stats(); s.Failed != 1 || !errors.Is(gotErr, ErrJobTimeout) {
			t.Errorf("Stats = %+v, OnError got %v; want one failed job with ErrJobTimeout", s, gotErr)
		}
	})
}

// TestCoarseClockStopsWithBase: a hard stop, here the base context ending,
// stops the clock's timer even if Shutdown is never called.
func TestCoarseClockStopsWithBase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, cancel := context.WithCancel(context.Background())
		p := startCoarse(t, func(context.Context, int) error { return nil }, WithContext(base))
		cancel()
		synctest.Wait()
		c := p.coarse
		c.mu.Lock()
		stopped := c.stopped && !c.timer.Stop()
		c.mu.Unlock()
		if !stopped {
			t.Error("the clock's timer is still armed after the base context ended")
		}
		p.Shutdown(context.Background())
	})
}

// startCoarse returns a started pool running h, which must time its jobs on
// a coarse clock (a job timeout of minCoarseTimeout or more, NopMetrics).
func startCoarse(t *testing.T, h Handler[int], opts ...Option) *Pool[int] {
	t.Helper()
	p, err := New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if p.coarse == nil {
		t.Fatal("the pool has no coarse clock")
	}
	p.Start()
	return p
}
