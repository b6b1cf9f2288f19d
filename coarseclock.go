package workpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClock spares a pool with a job timeout the clock read per job that
// timing each job's deadline would take: a read of the monotonic clock costs
// 31ns on the Turin-class AMD VM of the README's tables (BenchmarkClock; its
// clock source is kvm-clock), and the workers, which read it, are what
// limits a busy pool.
//
// A timer refreshes now every tick while workers are awake, so now is at
// most a tick (and the timer's lateness) behind the real clock and never
// ahead of it. A job's start is taken from now: its deadline, start +
// timeout + slack, is then still at least the timeout after its real start,
// because tick is half the slack, unless the timer runs more than a tick
// late (see WithJobTimeout). At the job's end the worker reads the real
// clock unless the coarse one shows the deadline far ahead (see jobEnd).
//
// The timer suspends itself once every worker is parked, so an idle pool
// costs no wake-ups; the first worker to start a job after that reads the
// real clock and rearms it (resume). A worker woken just as the timer
// suspends may run a job on a suspended clock: its start is the fresh time
// of that last tick, and its end reads the real clock (stale is set).
//
// Used only when the pool has a job timeout of at least minCoarseTimeout
// and its metrics do not take durations (they read the real clock at both
// ends of every job).
type coarseClock struct {
	_ cacheLinePad
	// now is the pool's clock at the last tick. Written by the timer and by
	// resume; read by every job.
	now atomic.Int64
	// stale is set while the timer is not running (before the pool starts,
	// while it is suspended, once stopped): now is not being refreshed.
	stale atomic.Bool
	_     cacheLinePad

	tick time.Duration // never changes

	mu      sync.Mutex
	timer   *time.Timer // guarded by mu; nil until the pool starts
	stopped bool        // guarded by mu; set by stop, for good
}

// minCoarseTimeout is the shortest job timeout for which a pool uses a
// coarse clock: its tick, timeout/128, is then 50ms or more (at most 20
// wake-ups a second while the pool is busy).
const minCoarseTimeout = 128 * 50 * time.Millisecond

// newCoarseClock returns the clock for a pool with job timeout, or nil if
// the pool reads the real clock for each job instead. Its tick is half the
// deadline slack.
func newCoarseClock(timeout time.Duration, timed bool) *coarseClock {
	if timed || timeout < minCoarseTimeout {
		return nil
	}
	c := &coarseClock{tick: deadlineSlack(timeout) / 2}
	c.stale.Store(true) // until the pool starts
	return c
}

// startClock arms the timer; the pool's workers are about to start.
func (p *Pool[T]) startClock() {
	if p.coarse != nil {
		p.resumeClock()
	}
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

// resumeClock refreshes now and arms the timer, if the clock is stale (the
// pool is starting, or the timer suspended itself) and not stopped.
func (p *Pool[T]) resumeClock() {
	c := p.coarse
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || !c.stale.Load() {
		return // stopped, or running: started, or resumed by another worker
	}
	c.now.Store(p.clock())
	c.stale.Store(false)
	if c.timer == nil {
		c.timer = time.AfterFunc(c.tick, p.tickClock)
	} else {
		c.timer.Reset(c.tick)
	}
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
			return p.clock() // stopped: no coarse time
		}
	}
	return p.coarse.now.Load()
}

// jobEnd returns the end of job context jc's job on the coarse clock, or
// on the real clock when the coarse one cannot tell whether the deadline
// has passed: the timer is suspended, the job has run half its timeout by
// the coarse clock, or its context has already ended or is watched (the
// handler may have seen the deadline pass). The half timeout is the margin
// for a late timer: the coarse end is exact unless the timer runs more
// than about timeout/2 late (a process frozen that long) and the handler
// never looked at its context.
func (p *Pool[T]) jobEnd(jc *jobCtx) int64 {
	c := p.coarse
	if c.stale.Load() || jc.state.Load() != 0 {
		return p.clock()
	}
	// stale first, then now: now only grows, so a now read after a false
	// stale is at least the time of that tick.
	now := c.now.Load()
	if now >= jc.dl-int64(p.timeout/2) {
		return p.clock()
	}
	return now
}
