package workpool

import "fmt"

// Resize sets the number of workers to n, at once, while the pool runs (or,
// before [Pool.Start], the number Start launches). Growing starts the new
// workers at once. Shrinking never interrupts or drops a job: each worker
// past the new size retires after the job it is running, or at once if it is
// idle, and the queue keeps every job for the workers that stay. Stats().Workers
// and the Prometheus workers gauge report n from the call on, while retiring
// workers may still finish their last job (Stats().Active counts them).
//
// It returns an error for n outside 1 to [MaxWorkers], and [ErrClosed] once
// shutdown has begun (or the pool's base context has ended). Resize is safe
// to call concurrently with Submit, Shutdown and itself; concurrent calls
// take effect one after the other.
func (p *Pool[T]) Resize(n int) error {
	if n <= 0 || n > MaxWorkers {
		return fmt.Errorf("workpool: Resize: workers must be positive and at most %d, got %d", MaxWorkers, n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// An ended base context begins shutdown even before its watcher runs,
	// as for Submit (TestBaseEndedNotRunning).
	if p.state == stateClosed || p.baseEnded() {
		return ErrClosed
	}
	old := int(p.size.Load())
	if n == old {
		return nil
	}
	p.grow(n)
	p.size.Store(int64(n))
	p.readProcs()
	if p.state == stateRunning {
		// Workers below n that retired (or are retiring, and will see n under
		// mu) come back; new ones start.
		for _, w := range (*p.crew.Load())[:n] {
			if !w.running {
				w.running = true
				p.live.Add(1)
				go p.work(w)
			}
		}
		if n < old {
			// Idle workers past n are parked: wake them to retire. The
			// others see the new size after their job.
			p.wakeAll()
		}
	}
	p.logInfo("workpool resized", "workers", n, "was", old)
	return nil
}

// grow makes the crew at least n workers long. The caller holds mu, or is
// New.
func (p *Pool[T]) grow(n int) {
	var crew []*worker
	if c := p.crew.Load(); c != nil {
		crew = *c
	}
	if len(crew) >= n {
		return
	}
	block := make([]worker, n-len(crew)) // one allocation; each padded apart
	next := make([]*worker, len(crew), n)
	copy(next, crew) // a new slice: Stats may be reading the old one
	for i := range block {
		w := &block[i]
		w.idx = len(next)
		w.ctx.home = p.home
		next = append(next, w)
	}
	p.crew.Store(&next)
}

// pastSize reports whether w may have to retire: Resize shrank the pool past
// it, and intake has not closed (see retire).
func (p *Pool[T]) pastSize(w *worker) bool {
	return int64(w.idx) >= p.size.Load() && !p.q.shutting()
}

// retire reports whether worker w must exit because the pool shrank past it.
// If so it publishes w's last job, then marks w stopped under mu, so that a
// Resize growing the pool again starts a new goroutine for it; the calling
// goroutine must not touch w after that. A retiring worker that took a
// wake-up meant for a job passes it on.
//
// Once intake is closed no worker retires: it leaves as the others do, when
// no job can appear any more. Otherwise a worker that just scheduled a retry
// could retire after the staying workers, who saw nothing waiting, had
// exited, and the retry would have no worker (TestResizeRetireKeepsRetry).
func (p *Pool[T]) retire(w *worker) bool {
	w.idle()
	p.mu.Lock()
	if w.idx < int(p.size.Load()) || p.state == stateClosed {
		p.mu.Unlock()
		return false
	}
	w.running = false
	p.mu.Unlock()
	if p.workAvailable() && p.sleepers.Load() > 0 && p.claimSleeper() {
		p.wake <- struct{}{}
	}
	if p.live.Add(-1) == 0 {
		p.signal()
	}
	return true
}
