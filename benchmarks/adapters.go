// Package benchmarks compares workpool with other Go worker pools through
// one small adapter per library. The adapters live here so the benchmarks,
// the exactly-once tests and the compare command all see the same list.
//
// It is a separate module so that the library never depends on its peers.
package benchmarks

import (
	"errors"
	"sync"
)

// Pool is what every contender offers the benchmarks. A job is an int so
// that pools with a typed job (workpool, the channel pool, ants' generic
// pool) carry it as data and closure-based pools capture it, as a user's
// code would.
type Pool interface {
	// Submit hands job i to the pool, blocking until it is accepted.
	Submit(i int) error
	// TrySubmit hands job i to the pool without blocking and reports
	// whether it was accepted. Only called on contenders whose
	// [Contender.TrySubmit] is true.
	TrySubmit(i int) bool
	// Close waits until every accepted job has finished and releases the
	// pool's goroutines.
	Close() error
}

// Config is what a contender is built from. Contenders ignore the fields
// their library has no setting for (see [Contender.Note]).
type Config struct {
	Workers int       // goroutines that run jobs
	Queue   int       // jobs that may wait for a worker
	Job     func(int) // the job body; must be safe for concurrent use
	// NonBlocking asks for a pool that will be fed with TrySubmit, for
	// libraries where that is a construction-time setting (ants, pond).
	NonBlocking bool
}

// Contender describes one library as configured for the comparison.
type Contender struct {
	Name string
	New  func(Config) (Pool, error)
	// TrySubmit is true when the library can refuse a job instead of
	// blocking (Submit returning ErrQueueFull, TryGo, a nonblocking mode).
	TrySubmit bool
	// Queue is true when jobs can wait for a worker without a goroutine
	// each: a bounded queue, or an unbounded one (Bounded false).
	Queue bool
	// Bounded is false when the library has no limit on waiting jobs or
	// on running goroutines that this comparison can set.
	Bounded bool
	// Note says in one line what the adapter does and what it cannot.
	Note string
}

// ErrUnsupported is returned by an adapter for an operation its library
// does not have.
var ErrUnsupported = errors.New("benchmarks: not supported by this library")

// Reference is the name of the baseline every ratio is taken against.
const Reference = "chan"

// Contenders returns every contender, the reference first.
func Contenders() []Contender {
	return []Contender{
		chanContender(),
		workpoolContender("workpool", false),
		workpoolContender("workpool-default", true),
		pondContender(),
		antsContender(),
		concContender(),
		errgroupContender(),
		gammazeroContender(),
		goroutineContender(),
	}
}

// chanPool is the reference: a buffered chan int read by Workers
// goroutines, with none of a pool library's features.
type chanPool struct {
	ch chan int
	wg sync.WaitGroup
}

func chanContender() Contender {
	return Contender{
		Name: Reference, TrySubmit: true, Queue: true, Bounded: true,
		Note: "buffered chan int of Queue slots read by Workers goroutines; TrySubmit is a select with default",
		New: func(c Config) (Pool, error) {
			p := &chanPool{ch: make(chan int, c.Queue)}
			for range c.Workers {
				p.wg.Go(func() {
					for i := range p.ch {
						c.Job(i)
					}
				})
			}
			return p, nil
		},
	}
}

func (p *chanPool) Submit(i int) error { p.ch <- i; return nil }

func (p *chanPool) TrySubmit(i int) bool {
	select {
	case p.ch <- i:
		return true
	default:
		return false
	}
}

func (p *chanPool) Close() error { close(p.ch); p.wg.Wait(); return nil }

// goroutinePool starts a goroutine per job: no bound, no queue.
type goroutinePool struct {
	job func(int)
	wg  sync.WaitGroup
}

func goroutineContender() Contender {
	return Contender{
		Name: "goroutine", Queue: false, Bounded: false,
		Note: "go job(i) per Submit plus a WaitGroup; ignores Workers and Queue, so nothing bounds it",
		New: func(c Config) (Pool, error) {
			return &goroutinePool{job: c.Job}, nil
		},
	}
}

func (p *goroutinePool) Submit(i int) error {
	p.wg.Go(func() { p.job(i) })
	return nil
}

func (p *goroutinePool) TrySubmit(int) bool { panic(ErrUnsupported) }

func (p *goroutinePool) Close() error { p.wg.Wait(); return nil }
