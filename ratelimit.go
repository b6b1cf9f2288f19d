package workpool

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// WithRateLimit caps how fast jobs start: at most limit per second on
// average, with bursts of up to burst, using golang.org/x/time/rate. A
// worker takes a token after it takes a job and before the handler starts,
// so a job is never started early and the handler never waits inside; the
// time spent waiting for the token counts as the job's queue wait
// (job_wait_seconds). A hard stop (Shutdown's deadline, the base context
// ending) interrupts the wait, and the job goes to OnDrop like any job not
// started. While a worker waits, the job counts in Stats().Active (the
// worker is busy with it), no longer in Queued. Default: no limit. limit
// must be positive (rate.Inf: no limit) and burst at least 1; New reports
// otherwise. [Pool.SetRateLimit] changes it at run time.
func WithRateLimit(limit rate.Limit, burst int) Option {
	return func(s *settings) {
		s.rateLimit, s.rateBurst, s.rateSet = limit, burst, true
	}
}

// checkRate validates a rate limit for WithRateLimit and SetRateLimit.
func checkRate(limit rate.Limit, burst int) error {
	if math.IsNaN(float64(limit)) || limit <= 0 {
		return fmt.Errorf("workpool: rate limit must be positive (rate.Inf for none), got %v", float64(limit))
	}
	if limit != rate.Inf && burst < 1 {
		return fmt.Errorf("workpool: rate limit burst must be at least 1, got %d", burst)
	}
	return nil
}

// SetRateLimit changes the pool's rate limit at run time (see
// [WithRateLimit]), or sets one on a pool created without: jobs start at
// most limit per second, with bursts of up to burst. rate.Inf removes the
// limit. Workers waiting for a token take a new one under the new limit at
// once. It returns an error for a limit that is not positive or a burst
// below 1, and leaves the limit unchanged then. Safe for concurrent use.
func (p *Pool[T]) SetRateLimit(limit rate.Limit, burst int) error {
	if err := checkRate(limit, burst); err != nil {
		return err
	}
	p.limitMu.Lock()
	defer p.limitMu.Unlock()
	switch cur := p.limiter.Load(); {
	case limit == rate.Inf:
		p.limiter.Store(nil)
	case cur == nil:
		p.limiter.Store(rate.NewLimiter(limit, burst))
	default:
		cur.SetLimit(limit)
		cur.SetBurst(burst)
	}
	close(p.limitCh) // waiting workers take their token again
	p.limitCh = make(chan struct{})
	return nil
}

// RateLimit returns the pool's rate limit and burst: rate.Inf and 0 when
// it has none.
func (p *Pool[T]) RateLimit() (rate.Limit, int) {
	if l := p.limiter.Load(); l != nil {
		return l.Limit(), l.Burst()
	}
	return rate.Inf, 0
}

// limitChanged returns a channel closed by the next SetRateLimit.
func (p *Pool[T]) limitChanged() <-chan struct{} {
	p.limitMu.Lock()
	defer p.limitMu.Unlock()
	return p.limitCh
}

// awaitToken waits for a rate-limit token. It returns early, without one,
// when the pool's run context ends (a hard stop or the base context; the
// caller then finds the pool stopping).
func (p *Pool[T]) awaitToken(w *worker) {
	if lim := p.limiter.Load(); lim == nil || lim.Allow() {
		return // no limit, or a token at hand: no lock, no reservation
	}
	w.idle() // the last job's end is published while we wait
	w.fresh = false
	p.held.Add(1) // the job shows in Stats as Active while we wait
	defer p.held.Add(-1)
	for {
		// changed is taken before the reservation, so a SetRateLimit after
		// it wakes the wait below, and one before it is in the reservation.
		changed := p.limitChanged()
		lim := p.limiter.Load()
		if lim == nil {
			return
		}
		r := lim.Reserve()
		d := r.Delay()
		if !r.OK() || d == 0 {
			return
		}
		if w.timer == nil {
			w.timer = time.NewTimer(d)
		} else {
			w.timer.Reset(d)
		}
		select {
		case <-w.timer.C:
			return
		case <-changed:
			r.Cancel()
			w.timer.Stop()
		case <-p.runCtx.Done():
			r.Cancel()
			w.timer.Stop()
			return
		}
	}
}
