package workpool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/workpool-go/workpool"
)

// concurrency is a handler that holds each job for a moment and records
// how many ran at once.
type concurrency struct {
	now, peak atomic.Int64
	ran       atomic.Int64
	hold      time.Duration
}

func (c *concurrency) handle(ctx context.Context, n int) error {
	cur := c.now.Add(1)
	for {
		p := c.peak.Load()
		if cur <= p || c.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	time.Sleep(c.hold)
	c.now.Add(-1)
	c.ran.Add(1)
	return nil
}

func TestSynctestResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &concurrency{hold: time.Second}
		p := startPool(t, c.handle, workpool.WithWorkers(2), workpool.WithQueueSize(100))
		for n := range 20 {
			p.Submit(n)
		}
		synctest.Wait()
		if got := c.now.Load(); got != 2 {
			t.Fatalf("%d running; want 2", got)
		}
		if err := p.Resize(5); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, w := c.now.Load(), p.Stats().Workers; got != 5 || w != 5 {
			t.Fatalf("after Resize(5): %d running, Workers %d; want 5, 5", got, w)
		}
		// Shrink while all five are busy: none is interrupted, and from
		// the end of their jobs on, one runs at a time.
		if err := p.Resize(1); err != nil {
			t.Fatal(err)
		}
		if got, w := c.now.Load(), p.Stats().Workers; got != 5 || w != 1 {
			t.Fatalf("right after Resize(1): %d running, Workers %d; want 5 (finishing), 1", got, w)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := c.now.Load(); got != 1 {
			t.Fatalf("a job's length after Resize(1): %d running; want 1", got)
		}
		// Grow again: the retired workers come back.
		if err := p.Resize(3); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := c.now.Load(); got != 3 {
			t.Fatalf("after Resize(3): %d running; want 3", got)
		}
		shutdown(t, p)
		s := p.Stats()
		if c.ran.Load() != 20 || s.Completed != 20 || s.Submitted != 20 || s.Workers != 3 {
			t.Errorf("ran %d; stats %+v; want all 20 jobs run once", c.ran.Load(), s)
		}
	})
}

// TestSynctestResizeIdle: shrinking a pool whose workers are parked retires
// them at once; a job submitted later still runs.
func TestSynctestResizeIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &concurrency{}
		p := startPool(t, c.handle, workpool.WithWorkers(8))
		synctest.Wait()
		if err := p.Resize(1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the seven retired workers have exited: synctest would not settle otherwise
		for n := range 10 {
			p.Submit(n)
		}
		shutdown(t, p)
		if c.ran.Load() != 10 || c.peak.Load() != 1 {
			t.Errorf("ran %d, at most %d at once; want 10, 1", c.ran.Load(), c.peak.Load())
		}
	})
}

func TestSynctestResizeBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // jobs overlap on the bubble's clock, not by luck
		c := &concurrency{hold: 50 * time.Millisecond}
		p := newPool(t, c.handle, workpool.WithWorkers(1))
		for n := range 8 {
			p.Submit(n)
		}
		if err := p.Resize(4); err != nil {
			t.Fatal(err)
		}
		if got := p.Stats().Workers; got != 4 {
			t.Errorf("Workers = %d before Start; want 4", got)
		}
		p.Start()
		shutdown(t, p)
		if c.ran.Load() != 8 || c.peak.Load() < 2 {
			t.Errorf("ran %d, at most %d at once; want 8 on more than one worker", c.ran.Load(), c.peak.Load())
		}
	})
}

func TestResizeErrors(t *testing.T) {
	p := startPool(t, func(context.Context, int) error { return nil }, workpool.WithWorkers(2))
	for _, n := range []int{0, -1, workpool.MaxWorkers + 1} {
		err := p.Resize(n)
		if err == nil || !strings.Contains(err.Error(), "workpool: Resize: workers must be positive and at most") {
			t.Errorf("Resize(%d) = %v", n, err)
		}
	}
	if got := p.Stats().Workers; got != 2 {
		t.Errorf("Workers = %d after refused resizes; want 2", got)
	}
	shutdown(t, p)
	if err := p.Resize(4); !errors.Is(err, workpool.ErrClosed) {
		t.Errorf("Resize after Shutdown = %v; want ErrClosed", err)
	}
}

// TestResizeStorm resizes concurrently with submitters, itself and
// Shutdown; every accepted job must end exactly once.
func TestResizeStorm(t *testing.T) {
	var ran sync.Map
	var dup atomic.Int64
	p := startPool(t, func(ctx context.Context, n int) error {
		if _, loaded := ran.LoadOrStore(n, true); loaded {
			dup.Add(1)
		}
		return nil
	}, workpool.WithWorkers(4), workpool.WithQueueSize(64))
	var wg sync.WaitGroup
	var accepted atomic.Int64
	stop := make(chan struct{})
	for s := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if p.SubmitWait(context.Background(), s*1_000_000+i) == nil {
					accepted.Add(1)
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := p.Resize(1 + rand.IntN(16)); err != nil && !errors.Is(err, workpool.ErrClosed) {
					t.Errorf("Resize: %v", err)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the storm blow; the checks below do not depend on it
	shutdown(t, p)
	close(stop)
	wg.Wait()
	s := p.Stats()
	n := int64(0)
	ran.Range(func(any, any) bool { n++; return true })
	if dup.Load() != 0 || n != accepted.Load() || s.Submitted != uint64(n) || s.Completed != uint64(n) || s.Dropped != 0 {
		t.Errorf("accepted %d, ran %d distinct, %d twice; stats %+v", accepted.Load(), n, dup.Load(), s)
	}
}
