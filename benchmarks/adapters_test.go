package benchmarks

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no contender leaves goroutines behind after Close.
// IgnoreCurrent exempts what runs before the first test: ants starts a
// default pool (a purge and a ticktock goroutine) from a package variable,
// which no Close of ours can stop. Every pool the tests build must be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// runs counts executions per job, to check each ran exactly once.
type runs []atomic.Int32

func (r runs) job(i int) { r[i].Add(1) }

func (r runs) check(t *testing.T) {
	t.Helper()
	bad := 0
	for i := range r {
		if n := r[i].Load(); n != 1 {
			if bad < 5 {
				t.Errorf("job %d ran %d times; want 1", i, n)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d jobs did not run exactly once", bad, len(r))
	}
}

const testJobs = 20_000

// TestExactlyOnce submits jobs to every contender, serially and from
// several goroutines, with a queue small enough to fill, and checks that
// each job ran exactly once by the time Close returned.
func TestExactlyOnce(t *testing.T) {
	for _, c := range Contenders() {
		t.Run(c.Name, func(t *testing.T) {
			for _, submitters := range []int{1, 8} {
				r := make(runs, testJobs)
				p, err := c.New(Config{Workers: 2, Queue: 64, Job: r.job})
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				per := testJobs / submitters
				for s := range submitters {
					wg.Go(func() {
						for i := s * per; i < (s+1)*per; i++ {
							if err := p.Submit(i); err != nil {
								t.Errorf("Submit(%d) = %v; want nil", i, err)
								return
							}
						}
					})
				}
				wg.Wait()
				if err := p.Close(); err != nil {
					t.Fatalf("Close() = %v; want nil", err)
				}
				r.check(t)
			}
		})
	}
}

// TestTrySubmitExactlyOnce feeds the contenders that can refuse a job
// through TrySubmit with retries, and checks that a refused job never runs
// and an accepted one runs exactly once.
func TestTrySubmitExactlyOnce(t *testing.T) {
	for _, c := range Contenders() {
		if !c.TrySubmit {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			r := make(runs, testJobs)
			p, err := c.New(Config{Workers: 2, Queue: 16, Job: r.job, NonBlocking: true})
			if err != nil {
				t.Fatal(err)
			}
			refused := 0
			for i := range testJobs {
				for !p.TrySubmit(i) {
					refused++
					runtime.Gosched()
				}
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close() = %v; want nil", err)
			}
			r.check(t)
			t.Logf("%d refusals for %d jobs", refused, testJobs)
		})
	}
}

// TestSkipReasons pins which contender sits out which scenario, so a change
// to an adapter's capabilities shows up here and in the report.
func TestSkipReasons(t *testing.T) {
	want := map[string][]string{
		"retry":  {"conc", "gammazero", "goroutine"},
		"memory": {"ants", "conc", "errgroup"},
	}
	for _, s := range Scenarios {
		var got []string
		for _, c := range Contenders() {
			if SkipReason(s.Name, c) != "" {
				got = append(got, c.Name)
			}
		}
		if len(got) != len(want[s.Name]) {
			t.Errorf("%s skips %v; want %v", s.Name, got, want[s.Name])
			continue
		}
		for i := range got {
			if got[i] != want[s.Name][i] {
				t.Errorf("%s skips %v; want %v", s.Name, got, want[s.Name])
				break
			}
		}
	}
}
