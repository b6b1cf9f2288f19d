package workpool_test

import (
	"context"
	"flag"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/workpool-go/workpool"
)

var soakJobs = flag.Int("soak.jobs", 0,
	"jobs in TestSoak; 0 means 1e7 (2e5 under -race, 1e5 with -short)")

// soakJob carries a payload pointer on some jobs, so the test can tell
// whether the pool keeps a finished or dropped job reachable.
type soakJob struct {
	id      int
	payload *[64]byte
}

// TestSoak runs ten million jobs through one pool (successes, errors, a few
// panics and Goexits, jobs that arm their context's timer, DropOldest
// evictions) and checks that nothing accumulates: at the end, with the pool
// still alive, heap in use and the goroutine count are back near where they
// started, and no finished or dropped job's payload is still reachable.
func TestSoak(t *testing.T) {
	n := *soakJobs
	if n == 0 {
		switch {
		case testing.Short():
			n = 100_000
		case raceEnabled:
			n = 200_000
		default:
			n = 10_000_000
		}
	}
	const workers, queue, submitters = 4, 64, 4
	var ran, dropped atomic.Int64
	p, err := workpool.New(func(ctx context.Context, j soakJob) error {
		ran.Add(1)
		switch {
		case j.id%1_000_003 == 0:
			runtime.Goexit()
		case j.id%100_003 == 0:
			panic("soak")
		case j.id%101 == 0:
			<-ctx.Done() // arms the lazy timer; the job timeout ends it
		case j.id%13 == 0:
			return errFuzz
		}
		return nil
	}, workpool.WithWorkers(workers), workpool.WithQueueSize(queue),
		workpool.WithDropPolicy(workpool.DropOldest), workpool.WithJobTimeout(50*time.Microsecond),
		workpool.OnDrop(func(soakJob, error) { dropped.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	// Warm up so the baseline includes the workers and the runtime's
	// steady state (timers, sync.Pool, stack sizes).
	soakRun(t, p, 10_000, submitters, nil)
	waitIdle(t, p)
	heap0, g0 := heapInUse(), runtime.NumGoroutine()

	begin := time.Now()
	weaks := soakRun(t, p, n, submitters, func(id int) bool { return id%(n/100) == 0 || id >= n-4*queue })
	waitIdle(t, p)
	elapsed := time.Since(begin)
	heap1, g1 := heapInUse(), runtime.NumGoroutine()

	// The pool is alive and idle: no job's payload may be reachable from it.
	kept := 0
	for _, w := range weaks {
		if w.Value() != nil {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of %d tracked job payloads still reachable after their jobs ended", kept, len(weaks))
	}
	if g1 != g0 {
		t.Errorf("goroutines = %d after %d jobs; want %d as before", g1, n, g0)
	}
	const heapSlack = 4 << 20
	if heap1 > heap0+heapSlack {
		t.Errorf("heap in use = %d KiB after %d jobs; want at most %d KiB (%d KiB before + slack)",
			heap1>>10, n, (heap0+heapSlack)>>10, heap0>>10)
	}
	shutdown(t, p)
	s := p.Stats()
	if s.Completed+s.Dropped != s.Submitted || s.Completed != uint64(ran.Load()) || s.Dropped != uint64(dropped.Load()) {
		t.Errorf("Stats = %+v; handlers ran %d, dropped %d", s, ran.Load(), dropped.Load())
	}
	t.Logf("%d jobs in %v (%.0f/s); heap in use %d -> %d KiB; goroutines %d -> %d; %d dropped; %d payloads tracked",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), heap0>>10, heap1>>10, g0, g1, s.Dropped, len(weaks))
}

// soakRun submits jobs 0..n-1 from several goroutines, half with Submit
// (evicting under DropOldest), half with SubmitWait. It gives a payload to
// the jobs track selects and returns weak pointers to those payloads.
func soakRun(t *testing.T, p *workpool.Pool[soakJob], n, submitters int, track func(int) bool) []weak.Pointer[[64]byte] {
	var mu sync.Mutex
	var weaks []weak.Pointer[[64]byte]
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			ctx := context.Background()
			for i := g; i < n; i += submitters {
				j := soakJob{id: i}
				if track != nil && track(i) {
					j.payload = new([64]byte)
					w := weak.Make(j.payload)
					mu.Lock()
					weaks = append(weaks, w)
					mu.Unlock()
				}
				var err error
				if g%2 == 0 {
					err = p.Submit(j)
				} else {
					err = p.SubmitWait(ctx, j)
				}
				if err != nil {
					t.Errorf("submit %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return weaks
}

// waitIdle waits until every accepted job has finished or been dropped.
func waitIdle(t *testing.T, p *workpool.Pool[soakJob]) {
	t.Helper()
	waitUntil(t, "the pool to go idle", func() bool {
		s := p.Stats()
		return s.Active == 0 && s.Queued == 0 && s.Completed+s.Dropped == s.Submitted
	})
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
