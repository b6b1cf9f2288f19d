package workpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClock spares a pool with a job timeout the clock read per job that
// timing each job's deadline would take: a read of the monotonic clock costs
// 15-40ns (32ns on the AMD VM of the README's tables, whose clock source is
// kvm-clock), and the workers, which read it, are what limits a busy pool.
//
// A timer refreshes now every tick while any worker is awake, so now is at
// most a tick (and the timer's lateness) behind the real clock and never
// ahead of it. A job's start is taken from now: its deadline, start +
// timeout + slack, is then still at least the timeout after its real start,
// because tick is half the slack. At the job's end the worker reads the real
// clock only if the deadline is within two ticks of now (it may have
// passed) or the timer is suspended; otherwise the job cannot have run past
// its deadline, and now stands in for its end.
//
// The timer suspends itself once every worker is parked, so an idle pool
// costs no wake-ups; the first worker to start a job after that reads the
// real clock and rearms it (resume). Used only when the pool has a job
// timeout of at least minCoarseTimeout and its metrics do not take
// durations (they read the real clock at both ends of every job).
type coarseClock struct {
	_ cacheLinePad
	// now is the pool's clock at the last tick. Written by the timer and by
	// resume; read by every job.
	now atomic.Int64
	// stale is set while the timer is suspended: now is not being refreshed.
	stale atomic.Bool
	_     cacheLinePad

	tick time.Duration // never changes

	mu      sync.Mutex
	timer   *time.Timer // guarded by mu; nil until start
	stopped bool        // guarded by mu; set by stop, for good
}

// minCoarseTimeout is the shortest job timeout for which a pool uses a
// coarse clock: its tick, timeout/128, is then 50ms or more (at most 20
// wake-ups a second while the pool is busy).
const minCoarseTimeout = 128 * 50 * time.Millisecond

// newCoarseClock returns the clock for a pool with job timeout and deadline
// slack, or nil if the pool reads the real clock for each job instead.
func newCoarseClock(timeout, slack time.Duration, timed bool) *coarseClock {
	if timed || timeout < minCoarseTimeout {
		return nil
	}
	c := &coarseClock{tick: slack / 2}
	c.stale.Store(true) // until start
	return c
}

// start arms the timer; the pool's workers are about to start.
func (p *Pool[T]) startClock() {
	c := p.coarse
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.timer != nil {
		return
	}
	c.now.Store(p.clock())
	c.stale.Store(false)
	c.timer = time.AfterFunc(c.tick, p.tickClock)
}

// tickClock is the timer's function: refresh now, and rearm unless every
// worker is parked.
func (p *Pool[T]) tickClock() {
	c := p.coarse
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.now.Store(p.clock())
	if p.sleepers.Load() >= p.live.Load() {
		// Every worker is parked (or gone): suspend. A worker woken from
		// now on sees stale before it times a job, and resumes.
		c.stale.Store(true)
		return
	}
	c.timer.Reset(c.tick)
}

// resumeClock refreshes now and rearms the suspended timer.
func (p *Pool[T]) resumeClock() {
	c := p.coarse
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.timer == nil || !c.stale.Load() {
		return // stopped, not started, or another worker resumed it
	}
	c.now.Store(p.clock())
	c.stale.Store(false)
	c.timer.Reset(c.tick)
}

// stopClock stops the timer for good, once the pool has stopped.
func (p *Pool[T]) stopClock() {
	c := p.coarse
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.stale.Store(true)
	if c.timer != nil {
		c.timer.Stop()
	}
}

// jobStart returns the start of a job on the coarse clock.
func (p *Pool[T]) jobStart() int64 {
	if p.coarse.stale.Load() {
		p.resumeClock()
		if p.coarse.stale.Load() {
			return p.clock() // stopped or never started: no coarse time
		}
	}
	return p.coarse.now.Load()
}

// jobEnd returns the end of a job with deadline dl on the coarse clock, or
// on the real clock when the coarse one cannot tell whether dl has passed.
func (p *Pool[T]) jobEnd(dl int64) int64 {
	c := p.coarse
	now := c.now.Load()
	if c.stale.Load() || now >= dl-2*int64(c.tick) {
		return p.clock()
	}
	return now
}
