package benchmarks

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The comparison: BenchmarkCompare/<scenario>/<contender>/workers=W/queue=Q.
// Each contender is built before the timer starts and closed after it
// stops; the timed region ends when the last submitted job has run, so a
// job counts only once it is done. Every sub-benchmark checks that each
// submitted job ran exactly once before it reports.
//
// WORKPOOL_BENCH_SEED, when set, shuffles the contenders' order inside each
// scenario, so that interleaved rounds (cmd/compare) do not always run the
// reference first.

// tally counts jobs run and closes done when the target is reached. The
// count sits on its own cache line, as every contender's job writes it.
type tally struct {
	_      [64]byte
	n      atomic.Int64
	_      [56]byte
	target int64
	done   chan struct{}
}

func newTally(target int) *tally {
	return &tally{target: int64(target), done: make(chan struct{})}
}

func (t *tally) job(int) {
	if t.n.Add(1) == t.target {
		close(t.done)
	}
}

// check closes p and verifies that exactly the target number of jobs ran.
func (t *tally) check(b *testing.B, p Pool) {
	b.Helper()
	if err := p.Close(); err != nil {
		b.Fatalf("Close() = %v; want nil", err)
	}
	if got := t.n.Load(); got != t.target {
		b.Fatalf("%d jobs ran; want exactly %d", got, t.target)
	}
}

func newPool(b *testing.B, c Contender, cfg Config) Pool {
	b.Helper()
	p, err := c.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func contenders() []Contender {
	cs := Contenders()
	if seed, err := strconv.ParseUint(os.Getenv("WORKPOOL_BENCH_SEED"), 10, 64); err == nil {
		r := rand.New(rand.NewPCG(seed, 0))
		r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	}
	return cs
}

var scenarioFuncs = map[string]func(*testing.B, Contender, Scenario){
	"serial":   benchSerial,
	"parallel": benchParallel,
	"cpu":      benchCPU,
	"sleep":    benchSleep,
	"retry":    benchRetry,
	"memory":   benchMemory,
}

func BenchmarkCompare(b *testing.B) {
	for _, s := range Scenarios {
		b.Run(s.Name, func(b *testing.B) {
			for _, c := range contenders() {
				b.Run(c.Name+"/"+s.Shape(), func(b *testing.B) {
					if why := SkipReason(s.Name, c); why != "" {
						b.Skip(why)
					}
					scenarioFuncs[s.Name](b, c, s)
				})
			}
		})
	}
}

// submitSerial submits b.N jobs from this goroutine with the timer running
// and waits until the last has run.
func submitSerial(b *testing.B, c Contender, s Scenario, job func(int), t *tally) {
	p := newPool(b, c, Config{Workers: s.Workers, Queue: s.Queue, Job: job})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := p.Submit(i); err != nil {
			b.Fatal(err)
		}
	}
	<-t.done
	b.StopTimer()
	t.check(b, p)
}

func benchSerial(b *testing.B, c Contender, s Scenario) {
	t := newTally(b.N)
	submitSerial(b, c, s, t.job, t)
}

func benchCPU(b *testing.B, c Contender, s Scenario) {
	iters, ns := calibrate()
	t := newTally(b.N)
	submitSerial(b, c, s, func(i int) { spin(iters); t.job(i) }, t)
	b.ReportMetric(ns, "job-ns")
}

func benchParallel(b *testing.B, c Contender, s Scenario) {
	t := newTally(b.N)
	p := newPool(b, c, Config{Workers: s.Workers, Queue: s.Queue, Job: t.job})
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Submit(1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	<-t.done
	b.StopTimer()
	t.check(b, p)
}

// sleepBatch is the number of jobs per iteration of the sleep scenario.
const sleepBatch = 1000

func benchSleep(b *testing.B, c Contender, s Scenario) {
	var batch sync.WaitGroup
	t := newTally(b.N * sleepBatch)
	p := newPool(b, c, Config{Workers: s.Workers, Queue: s.Queue, Job: func(i int) {
		time.Sleep(time.Millisecond)
		t.job(i)
		batch.Done()
	}})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		batch.Add(sleepBatch)
		for i := range sleepBatch {
			if err := p.Submit(i); err != nil {
				b.Fatal(err)
			}
		}
		batch.Wait()
	}
	b.StopTimer()
	t.check(b, p)
}

func benchRetry(b *testing.B, c Contender, s Scenario) {
	t := newTally(b.N)
	p := newPool(b, c, Config{Workers: s.Workers, Queue: s.Queue, Job: t.job, NonBlocking: true})
	drops := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for !p.TrySubmit(i) {
			drops++
			runtime.Gosched()
		}
	}
	<-t.done
	b.StopTimer()
	t.check(b, p)
	b.ReportMetric(float64(drops)/float64(b.N), "drops/op")
}

// benchMemory queues jobs behind workers blocked on a gate and reports the
// growth of live heap and goroutine stacks per job, the pool's construction
// included (a preallocated queue is part of what holding the jobs costs).
func benchMemory(b *testing.B, c Contender, s Scenario) {
	jobs := s.Queue
	if !c.Queue {
		jobs = MemoryJobsGoroutine
	}
	var perJob float64
	for range b.N {
		gate := make(chan struct{})
		t := newTally(jobs)
		b.StopTimer()
		before := liveBytes()
		b.StartTimer()
		p := newPool(b, c, Config{Workers: s.Workers, Queue: jobs, Job: func(i int) { <-gate; t.job(i) }})
		for i := range jobs {
			if err := p.Submit(i); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		perJob = float64(liveBytes()-before) / float64(jobs)
		b.StartTimer()
		close(gate)
		<-t.done
		t.check(b, p)
	}
	b.ReportMetric(perJob, "B/job")
	b.ReportMetric(float64(jobs), "queued-jobs")
}

// liveBytes is the live heap plus goroutine stacks after a collection.
func liveBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

var (
	calibrateOnce sync.Once
	spinIters     int
	spinNs        float64
	spinSink      atomic.Uint64
)

// calibrate returns the loop count for a ~1 µs spin and its measured time.
func calibrate() (int, float64) {
	calibrateOnce.Do(func() {
		const probe = 200_000
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			spin(probe)
			best = min(best, time.Since(start))
		}
		spinIters = max(1, int(float64(probe)*float64(time.Microsecond)/float64(best)))
		start := time.Now()
		for range 1000 {
			spin(spinIters)
		}
		spinNs = float64(time.Since(start).Nanoseconds()) / 1000
	})
	return spinIters, spinNs
}

// spin runs n rounds of FNV-1a over the loop index: CPU work the compiler
// cannot drop.
func spin(n int) {
	h := uint64(14695981039346656037)
	for i := range n {
		h ^= uint64(i)
		h *= 1099511628211
	}
	if h == 0 {
		spinSink.Add(1)
	}
}
