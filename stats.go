package workpool

// Stats is a snapshot of a pool's state and counters, from [Pool.Stats].
//
// At rest (no submission or job in progress) the counters satisfy
// Submitted == Completed + Dropped + Queued + Active, and after a finished
// shutdown Queued == Active == 0. While the pool works, each field is read
// separately: the identity may be off by the jobs in flight, but no field is
// ever negative, Panicked <= Failed <= Completed, and counters never go down.
type Stats struct {
	Workers       int // configured workers
	Active        int // handlers running now
	Queued        int // accepted jobs waiting for a worker
	QueueCapacity int // configured queue size

	Submitted uint64 // jobs accepted by Submit or SubmitWait
	Rejected  uint64 // submissions refused: queue full, closed, or SubmitWait's context ended
	Completed uint64 // handlers finished, whatever the outcome
	Failed    uint64 // of Completed: error, panic, timeout or Goexit
	Panicked  uint64 // of Failed: panics
	Dropped   uint64 // accepted jobs handed to OnDrop instead of running
}

// Stats returns a snapshot of the pool's state and counters. It takes no lock
// and costs a few loads per worker.
func (p *Pool[T]) Stats() Stats {
	s := Stats{
		Workers:       len(p.workers),
		QueueCapacity: int(p.q.size),
		Rejected:      p.rejected.Load(),
		Dropped:       p.dropped.Load(),
	}
	for i := range p.workers {
		w := &p.workers[i]
		// Reverse order of increments: see worker.
		s.Panicked += w.panicked.Load()
		s.Failed += w.failed.Load()
		c := w.completed.Load()
		s.Completed += c
		// A worker runs at most one job. started - c may be 2 when the
		// worker finished a job and started the next between the loads.
		if w.started.Load() != c {
			s.Active++
		}
	}
	s.Queued = p.q.len()
	s.Submitted = p.q.accepted()
	return s
}
