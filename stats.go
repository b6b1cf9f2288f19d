package workpool

// Stats is a snapshot of a pool's state and counters, from [Pool.Stats].
//
// When no job is running (Active == 0) and none is being submitted, the
// counters satisfy Submitted == Completed + Dropped + Queued + Retrying;
// once Shutdown has returned, Queued == Retrying == 0 too, so Submitted ==
// Completed + Dropped. While the pool works, each field is read separately:
// the identity may be off by the jobs in flight, but no field is ever
// negative, Panicked <= Failed <= Completed, and counters never go down.
type Stats struct {
	Workers int // configured workers
	// Active is the workers busy with a job: running its handler, or, with
	// a rate limit, holding it while they wait for a token to start it.
	Active        int
	Queued        int // accepted jobs waiting for a worker
	QueueCapacity int // configured queue size

	Submitted uint64 // jobs accepted by Submit or SubmitWait
	Rejected  uint64 // submissions refused: queue full, closed, or SubmitWait's context ended
	Completed uint64 // handlers finished, whatever the outcome
	Failed    uint64 // of Completed: error, panic, timeout or Goexit
	Panicked  uint64 // of Failed: panics
	Dropped   uint64 // accepted jobs handed to OnDrop instead of running

	// With a retry policy ([WithRetry]):
	Retrying int    // accepted jobs waiting for their next attempt
	Retries  uint64 // attempts beyond the first ones: retries scheduled
}

// Stats returns a snapshot of the pool's state and counters. It takes no lock
// and costs a few loads per worker.
func (p *Pool[T]) Stats() Stats {
	s := Stats{
		Workers:       int(p.size.Load()),
		QueueCapacity: int(p.q.size),
		Rejected:      p.rejected.Load(),
		Dropped:       p.dropped.Load(),
	}
	for _, w := range *p.crew.Load() {
		started, finished, failed, panicked := w.snapshot()
		s.Panicked += panicked
		s.Failed += failed
		s.Completed += finished
		s.Active += int(started - finished)
	}
	s.Active += int(p.held.Load())
	if r := p.retry; r != nil {
		s.Retrying = int(max(r.waiting.Load(), 0))
		s.Retries = r.retries.Load()
	}
	s.Queued = p.q.len()
	s.Submitted = p.q.accepted()
	return s
}
