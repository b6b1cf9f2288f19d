//go:build workpool_counters

package workpool

import "sync/atomic"

// This file is compiled only with -tags workpool_counters, for the
// benchmarks' mechanism counters (see BenchmarkSubmit); counters_off.go is
// its empty twin, so the production path carries none of it.

// workerCounts counts a worker's dispatch events. Owned by the worker
// goroutine; read only after it exited (Shutdown waits for that).
type workerCounts struct {
	failedPops uint64 // pops that found no job ready
	yields     uint64 // runtime.Gosched calls while idle
	parks      uint64 // blocking waits for a wake-up
	tailPolls  uint64 // reads of tail, the producers' line, while idle
}

func (c *workerCounts) failedPop()  { c.failedPops++ }
func (c *workerCounts) yielded()    { c.yields++ }
func (c *workerCounts) parked()     { c.parks++ }
func (c *workerCounts) polledTail() { c.tailPolls++ }

// poolCounts counts the submitters' dispatch events, from any goroutine.
type poolCounts struct {
	_       cacheLinePad
	wakeups atomic.Uint64 // parked workers woken by a submitter
	yields  atomic.Uint64 // runtime.Gosched calls by SubmitWait on a full queue
	parks   atomic.Uint64 // SubmitWait's blocking waits for room
	_       cacheLinePad
}

func (c *poolCounts) wokeWorker()    { c.wakeups.Add(1) }
func (c *poolCounts) submitYielded() { c.yields.Add(1) }
func (c *poolCounts) submitParked()  { c.parks.Add(1) }

// ringCounts counts the queue's lost races for head or tail (see
// stepAside) and the spells spun after them, from any goroutine.
type ringCounts struct {
	_      cacheLinePad // off the line of the ring fields every push and pop reads
	races  atomic.Uint64
	spells atomic.Uint64
}

func (c *ringCounts) lost(spells int) {
	c.races.Add(1)
	c.spells.Add(uint64(spells))
}

func (c *ringCounts) load() (lost, spells uint64) { return c.races.Load(), c.spells.Load() }

// mechanism sums the counters. Call it only once the workers exited.
func (p *Pool[T]) mechanism() (m dispatchCounts, ok bool) {
	for _, w := range *p.crew.Load() {
		c := &w.counts
		m.failedPops += c.failedPops
		m.yields += c.yields
		m.parks += c.parks
		m.tailPolls += c.tailPolls
	}
	m.yields += p.counts.yields.Load()
	m.parks += p.counts.parks.Load()
	m.wakeups = p.counts.wakeups.Load()
	m.lostRaces, m.spells = p.q.counts.load()
	return m, true
}
