package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/gammazero/workerpool"
	"github.com/panjf2000/ants/v2"
	"github.com/sourcegraph/conc/pool"
	"golang.org/x/sync/errgroup"

	"github.com/workpool-go/workpool"
)

// workpoolPool feeds a workpool.Pool[int]: Submit is SubmitWait (blocks for
// room), TrySubmit is Submit (refuses with ErrQueueFull).
type workpoolPool struct {
	p   *workpool.Pool[int]
	ctx context.Context
}

// workpoolContender is workpool with the job timeout off, or, when
// defaults is true, with the 30 s default timeout users get.
func workpoolContender(name string, defaults bool) Contender {
	note := "Pool[int], WithWorkers, WithQueueSize, WithJobTimeout(0); Submit=SubmitWait, TrySubmit=Submit"
	if defaults {
		note = "as workpool but with the default 30 s per-job timeout (a job context with a deadline)"
	}
	return Contender{
		Name: name, TrySubmit: true, Queue: true, Bounded: true, Note: note,
		New: func(c Config) (Pool, error) {
			opts := []workpool.Option{workpool.WithWorkers(c.Workers), workpool.WithQueueSize(c.Queue)}
			if !defaults {
				opts = append(opts, workpool.WithJobTimeout(0))
			}
			job := c.Job
			p, err := workpool.New(func(_ context.Context, i int) error { job(i); return nil }, opts...)
			if err != nil {
				return nil, err
			}
			p.Start()
			return &workpoolPool{p: p, ctx: context.Background()}, nil
		},
	}
}

func (w *workpoolPool) Submit(i int) error { return w.p.SubmitWait(w.ctx, i) }

func (w *workpoolPool) TrySubmit(i int) bool {
	switch err := w.p.Submit(i); {
	case err == nil:
		return true
	case errors.Is(err, workpool.ErrQueueFull):
		return false
	default:
		panic(err)
	}
}

func (w *workpoolPool) Close() error { return w.p.Shutdown(context.Background()) }

// pondPool feeds a pond/v2 pool through Go, its cheapest entry (no future).
type pondPool struct {
	p   pond.Pool
	job func(int)
}

func pondContender() Contender {
	return Contender{
		Name: "pond", TrySubmit: true, Queue: true, Bounded: true,
		Note: "NewPool(Workers, WithQueueSize(Queue)); Go(closure); TrySubmit is Go on a WithNonBlocking(true) pool; workers start on demand and exit when idle",
		New: func(c Config) (Pool, error) {
			opts := []pond.Option{pond.WithQueueSize(c.Queue)}
			if c.NonBlocking {
				opts = append(opts, pond.WithNonBlocking(true))
			}
			return &pondPool{p: pond.NewPool(c.Workers, opts...), job: c.Job}, nil
		},
	}
}

func (p *pondPool) Submit(i int) error { return p.p.Go(func() { p.job(i) }) }

func (p *pondPool) TrySubmit(i int) bool {
	switch err := p.p.Go(func() { p.job(i) }); {
	case err == nil:
		return true
	case errors.Is(err, pond.ErrQueueFull):
		return false
	default:
		panic(err)
	}
}

func (p *pondPool) Close() error { p.p.StopAndWait(); return nil }

// antsPool feeds an ants PoolWithFuncGeneric[int]: the job is data, as in
// workpool. ants has no queue: Invoke hands the job to an idle worker or
// blocks the caller until one is free (or fails, in nonblocking mode).
type antsPool struct {
	p *ants.PoolWithFuncGeneric[int]
}

func antsContender() Contender {
	return Contender{
		Name: "ants", TrySubmit: true, Queue: false, Bounded: true,
		Note: "NewPoolWithFuncGeneric[int](Workers, job), default options; no queue (Queue ignored: a blocked Invoke waits on a sync.Cond); TrySubmit is Invoke on a WithNonblocking(true) pool",
		New: func(c Config) (Pool, error) {
			var opts []ants.Option
			if c.NonBlocking {
				opts = append(opts, ants.WithNonblocking(true))
			}
			p, err := ants.NewPoolWithFuncGeneric(c.Workers, c.Job, opts...)
			if err != nil {
				return nil, err
			}
			return &antsPool{p: p}, nil
		},
	}
}

func (a *antsPool) Submit(i int) error { return a.p.Invoke(i) }

func (a *antsPool) TrySubmit(i int) bool {
	switch err := a.p.Invoke(i); {
	case err == nil:
		return true
	case errors.Is(err, ants.ErrPoolOverload):
		return false
	default:
		panic(err)
	}
}

func (a *antsPool) Close() error {
	if err := a.p.ReleaseTimeout(time.Minute); err != nil {
		return fmt.Errorf("ants: ReleaseTimeout: %w", err)
	}
	return nil
}

// concPool feeds a sourcegraph/conc pool.Pool: Go blocks until a goroutine
// is free; there is no queue and no way to refuse.
type concPool struct {
	p   *pool.Pool
	job func(int)
}

func concContender() Contender {
	return Contender{
		Name: "conc", Queue: false, Bounded: true,
		Note: "pool.New().WithMaxGoroutines(Workers); Go(closure) blocks until a goroutine takes it; no queue, no non-blocking submit",
		New: func(c Config) (Pool, error) {
			return &concPool{p: pool.New().WithMaxGoroutines(c.Workers), job: c.Job}, nil
		},
	}
}

func (p *concPool) Submit(i int) error { p.p.Go(func() { p.job(i) }); return nil }

func (p *concPool) TrySubmit(int) bool { panic(ErrUnsupported) }

func (p *concPool) Close() error { p.p.Wait(); return nil }

// errgroupPool feeds an errgroup.Group with SetLimit: Go starts a goroutine
// per job once a slot is free; TryGo refuses instead of waiting.
type errgroupPool struct {
	g   errgroup.Group
	job func(int)
}

func errgroupContender() Contender {
	return Contender{
		Name: "errgroup", TrySubmit: true, Queue: false, Bounded: true,
		Note: "errgroup.Group with SetLimit(Workers); a goroutine per job, at most Workers at once; no queue; TrySubmit is TryGo",
		New: func(c Config) (Pool, error) {
			p := &errgroupPool{job: c.Job}
			p.g.SetLimit(c.Workers)
			return p, nil
		},
	}
}

func (p *errgroupPool) Submit(i int) error {
	p.g.Go(func() error { p.job(i); return nil })
	return nil
}

func (p *errgroupPool) TrySubmit(i int) bool {
	return p.g.TryGo(func() error { p.job(i); return nil })
}

func (p *errgroupPool) Close() error { return p.g.Wait() }

// gammazeroPool feeds a gammazero/workerpool: Submit never blocks because
// its waiting queue has no bound.
type gammazeroPool struct {
	p   *workerpool.WorkerPool
	job func(int)
}

func gammazeroContender() Contender {
	return Contender{
		Name: "gammazero", Queue: true, Bounded: false,
		Note: "workerpool.New(Workers); Submit(closure) through a dispatcher goroutine into an unbounded deque (Queue ignored); nothing to refuse",
		New: func(c Config) (Pool, error) {
			return &gammazeroPool{p: workerpool.New(c.Workers), job: c.Job}, nil
		},
	}
}

func (p *gammazeroPool) Submit(i int) error { p.p.Submit(func() { p.job(i) }); return nil }

func (p *gammazeroPool) TrySubmit(int) bool { panic(ErrUnsupported) }

func (p *gammazeroPool) Close() error { p.p.StopWait(); return nil }
