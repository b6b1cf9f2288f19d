package workpool

// dispatchCounts is what the pool's dispatch did, counted only in a build
// with -tags workpool_counters, for the benchmarks (see counters_on.go).
type dispatchCounts struct {
	failedPops uint64 // pops by workers that found no job ready
	yields     uint64 // runtime.Gosched calls by idle workers and waiting submitters
	parks      uint64 // blocking waits: idle workers, and SubmitWait on a full queue
	wakeups    uint64 // parked workers woken by a submitter
	tailPolls  uint64 // reads of tail (written by every push) by idle workers
	lostRaces  uint64 // races for head or tail lost to another goroutine (see stepAside)
	spells     uint64 // spells spun off head or tail after a lost race (see stepAside)
}
