package benchmarks

import "fmt"

// Scenario is one benchmark of the comparison, run for every contender as
// the sub-benchmark Name/contender/workers=W/queue=Q.
type Scenario struct {
	Name    string
	Title   string
	Workers int
	Queue   int
	// Metric is the unit the compare command reports for it.
	Metric string
	// Desc says what it measures, in one sentence.
	Desc string
}

// MemoryJobs is how many jobs the memory scenario queues behind blocked
// workers; MemoryJobsGoroutine is the smaller count used for contenders that
// hold a waiting job in a goroutine, to spare the shared machine gigabytes
// of stacks (bytes per job do not depend on the count).
const (
	MemoryJobs          = 1_000_000
	MemoryJobsGoroutine = 100_000
)

// Scenarios lists the comparison in the order the report shows it.
var Scenarios = []Scenario{
	{"serial", "Serial submit, empty job", 2, 1024, "ns/op",
		"one goroutine submits (blocking when full); per job: submit, hand-off, run, until the last job has run"},
	{"parallel", "Parallel submit (8×GOMAXPROCS submitters), empty job", 2, 1024, "ns/op",
		"RunParallel with SetParallelism(8); contended submit and dispatch per job"},
	{"cpu", "Serial submit, ~1 µs CPU job", 2, 1024, "ns/op",
		"as serial, but each job runs a calibrated ~1 µs hashing loop: the pool's cost next to real work"},
	{"sleep", "1000 jobs × 1 ms sleep on 100 workers", 100, 1024, "ns/op",
		"time per batch of 1000 jobs that each sleep 1 ms; ideal is 10 ms (1000/100 × 1 ms)"},
	{"retry", "Non-blocking submit with retry, empty job", 2, 1024, "ns/op",
		"TrySubmit, and on refusal runtime.Gosched and retry; drops/op counts refusals per accepted job"},
	{"memory", "Memory per queued job (10^6 queued behind blocked workers)", 2, MemoryJobs, "B/job",
		"live heap+stack growth per job while 10^6 jobs wait behind 2 blocked workers (queue sized to hold them)"},
}

// Shape returns the sub-benchmark suffix for the scenario.
func (s Scenario) Shape() string { return fmt.Sprintf("workers=%d/queue=%d", s.Workers, s.Queue) }

// SkipReason returns why contender c does not take part in scenario s, or
// "" when it does.
func SkipReason(s string, c Contender) string {
	switch s {
	case "retry":
		if !c.Bounded {
			return "no bound: Submit always accepts, so there is nothing to refuse or retry"
		}
		if !c.TrySubmit {
			return "no non-blocking submit (Go blocks until a goroutine is free)"
		}
	case "memory":
		if !c.Queue && c.Bounded {
			return "no queue: each waiting job would need its own blocked submitter goroutine"
		}
	}
	return ""
}
