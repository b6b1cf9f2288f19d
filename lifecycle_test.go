package workpool_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workpool-go/workpool"
)

// TestStatsMonotonic samples Stats while a mixed workload runs: counters must never go down,
// Panicked <= Failed <= Completed, Queued <= QueueCapacity, Active <= Workers,
// Completed+Dropped <= Submitted.
func TestStatsMonotonic(t *testing.T) {
	p := newPool(t, func(ctx context.Context, n int) error {
		switch n % 5 {
		case 1:
			return errors.New("x")
		case 2:
			panic("p")
		}
		return nil
	}, workpool.WithWorkers(3), workpool.WithQueueSize(4), workpool.WithDropPolicy(workpool.DropOldest),
		workpool.OnDrop(func(int, error) {}))
	p.Start()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				p.Submit(g*1000000 + i)
			}
		}()
	}
	var prev workpool.Stats
	for range 50000 {
		s := p.Stats()
		bad := s.Submitted < prev.Submitted || s.Completed < prev.Completed || s.Failed < prev.Failed ||
			s.Panicked < prev.Panicked || s.Dropped < prev.Dropped || s.Rejected < prev.Rejected ||
			s.Panicked > s.Failed || s.Failed > s.Completed || s.Queued < 0 ||
			s.Active < 0 || s.Active > s.Workers || s.Completed+s.Dropped > s.Submitted
		if bad {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("Stats %+v after %+v", s, prev)
		}
		prev = s
	}
	stop.Store(true)
	wg.Wait()
}

// TestLifecycleRaces: Start, Shutdown (two, different ctxs), base-context
// cancel and submitters all racing: no hang, nothing lost, nothing run twice or after drop.
func TestLifecycleRaces(t *testing.T) {
	for i := range 100 {
		base, cancelBase := context.WithCancel(context.Background())
		var ran, dropped atomic.Int64
		seen := make([]atomic.Int32, 4*50)
		p, err := workpool.New(func(ctx context.Context, n int) error {
			ran.Add(1)
			if seen[n].Add(1) != 1 {
				t.Errorf("job %d ended twice", n)
			}
			return nil
		}, workpool.WithWorkers(2), workpool.WithQueueSize(8), workpool.WithContext(base),
			workpool.WithDropPolicy(workpool.DropPolicy(i%2)),
			workpool.OnDrop(func(n int, _ error) {
				dropped.Add(1)
				if seen[n].Add(1) != 1 {
					t.Errorf("job %d ended twice", n)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 50 {
					if p.Submit(g*50+j) == nil {
						accepted.Add(1)
					}
				}
			}()
		}
		wg.Add(3)
		go func() { defer wg.Done(); p.Start() }()
		go func() {
			defer wg.Done()
			if i%3 == 0 {
				cancelBase()
			}
		}()
		errs := make(chan error, 2)
		go func() {
			defer wg.Done()
			ctx, c := context.WithTimeout(context.Background(), time.Duration(i%4)*time.Millisecond)
			defer c()
			errs <- p.Shutdown(ctx)
		}()
		ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		begin := time.Now()
		err2 := p.Shutdown(ctx)
		c()
		wg.Wait()
		if time.Since(begin) > 2*time.Second {
			t.Fatalf("iteration %d: Shutdown took %v (err %v)", i, time.Since(begin), err2)
		}
		s := p.Stats()
		if got := ran.Load() + dropped.Load(); got != accepted.Load() || s.Submitted != uint64(accepted.Load()) ||
			s.Completed+s.Dropped != s.Submitted || s.Active != 0 || s.Queued != 0 {
			t.Fatalf("iteration %d: ran %d + dropped %d; accepted %d; Stats %+v", i, ran.Load(), dropped.Load(), accepted.Load(), s)
		}
		cancelBase()
	}
}
