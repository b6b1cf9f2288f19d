package workpool

import (
	"math/bits"
	"runtime"
	"sync/atomic"
)

// ring is the pool's bounded queue: a lock-free multi-producer,
// multi-consumer FIFO of T after Dmitry Vyukov's array queue. Each slot
// carries a sequence number that says whose turn it is, so a push or pop is
// one compare-and-swap on a position counter plus one store to the slot.
// Storage is one slot per queue position: sizeof(T) plus 8 bytes (and, when the pool
// records queue wait, 8 more in stamps).
//
// The top bit of tail closes the queue: once set, no push can succeed, so the
// set of accepted jobs is final and consumers can drain it (see close).
type ring[T any] struct {
	_ cacheLinePad
	// tail is the next position to push, with closedBit. Written by producers.
	tail atomic.Uint64
	_    cacheLinePad
	// head is the next position to pop. Written by consumers.
	head atomic.Uint64
	_    cacheLinePad
	// shut is set once by close, after closedBit: the same fact on a line
	// the producers never write, for idle consumers to poll (see ready).
	shut  atomic.Bool
	_     cacheLinePad
	size  uint64 // number of slots; never changes
	recip uint64 // floor((2^64-1)/size), for index without a division
	// slots[pos % size] holds position pos. Consecutive positions share
	// cache lines (see index).
	slots []slot[T]
	// procs is runtime.GOMAXPROCS as last read: by newRing, and by the
	// pool's readProcs at Start and Resize (reading it takes the scheduler's
	// lock, so not per job). Atomic, as pushes and pops read it (see lull)
	// and so do idle workers (see idleSpinRounds). It goes stale if
	// GOMAXPROCS changes in between, which costs time, never correctness: a
	// pool grown from one P steps aside only once Start or Resize reads it.
	procs atomic.Int64
	// stamps[i] is when slots[i]'s job was accepted (nanoseconds on the
	// pool's clock); nil when the pool does not record queue wait.
	stamps []int64
	counts ringCounts // lost races and spells; empty unless built for them
}

type slot[T any] struct {
	// seq == 2*pos: free for the push at pos.
	// seq == 2*pos+1: holds the job pushed at pos, ready for the pop at pos.
	// A pop at pos sets seq to 2*(pos+size), freeing the slot for the next
	// round. (Doubling keeps "ready for pos" and "free for pos+1" apart even
	// when size is 1.)
	seq atomic.Uint64
	val T
}

type cacheLinePad [64]byte

const closedBit = 1 << 63

type pushResult uint8

const (
	pushed pushResult = iota
	pushFull
	pushClosed
)

func newRing[T any](size int, stamped bool) *ring[T] {
	r := &ring[T]{size: uint64(size), recip: ^uint64(0) / uint64(size), slots: make([]slot[T], size)}
	for pos := range uint64(size) {
		r.slots[pos].seq.Store(2 * pos) // free for the first round
	}
	if stamped {
		r.stamps = make([]int64, size)
	}
	r.setProcs(runtime.GOMAXPROCS(0))
	return r
}

// push appends v unless the queue is full or closed. It never blocks; after
// lost races it may spin for up to maxSpells spells, about 16µs (see
// stepAside).
func (r *ring[T]) push(v T, stamp int64) pushResult { return r.pushAt(v, stamp, false) }

// pushAt is push; with afterClose it pushes even once the queue is closed
// (for an eviction that began before close and must replace what it evicts).
func (r *ring[T]) pushAt(v T, stamp int64, afterClose bool) pushResult {
	tail := r.tail.Load()
	budget := maxSpells // for stepping aside, per call
	for {
		if tail&closedBit != 0 && !afterClose {
			return pushClosed
		}
		pos := tail &^ closedBit
		i := r.index(pos)
		s := &r.slots[i]
		seq := s.seq.Load()
		switch d := int64(seq - 2*pos); {
		case d == 0:
			// The closed bit, if set, is kept: tail+1 never carries into it.
			if r.tail.CompareAndSwap(tail, tail+1) {
				s.val = v
				if r.stamps != nil {
					r.stamps[i] = stamp
				}
				s.seq.Store(2*pos + 1) // publishes val and stamp to the popper
				return pushed
			}
			tail, budget = r.stepAside(&r.tail, budget)
		case d < 0:
			// The slot still holds the job from the previous round: full.
			return pushFull
		default:
			// Another producer took pos; catch up.
			tail, budget = r.stepAside(&r.tail, budget)
		}
	}
}

// pop removes the oldest job. ok is false when no job is ready: the queue is
// empty, or the producer of the next job has not finished writing it (see
// pending). It never blocks; after lost races it may spin for up to
// maxSpells spells, about 16µs (see stepAside).
func (r *ring[T]) pop() (v T, stamp int64, ok bool) {
	pos := r.head.Load()
	budget := maxSpells // for stepping aside, per call
	for {
		i := r.index(pos)
		s := &r.slots[i]
		seq := s.seq.Load()
		switch d := int64(seq - (2*pos + 1)); {
		case d == 0:
			if r.head.CompareAndSwap(pos, pos+1) {
				v = s.val
				var zero T
				s.val = zero // the queue must not keep a finished job reachable
				if r.stamps != nil {
					stamp = r.stamps[i]
				}
				s.seq.Store(2 * (pos + r.size)) // frees the slot for the next round
				return v, stamp, true
			}
			pos, budget = r.stepAside(&r.head, budget)
		case d < 0:
			return v, 0, false
		default:
			// Another consumer took pos.
			pos, budget = r.stepAside(&r.head, budget)
		}
	}
}

// stepAside is called by a push (a pop) that lost the race for tail (head)
// to another goroutine: its compare-and-swap failed, or the slot showed that
// its read of the counter c was stale. It returns c's value to try next and
// what is left of the call's budget of spells (see awaitLull); once that is
// spent, or with one P (lull 0), the call retries at once.
func (r *ring[T]) stepAside(c *atomic.Uint64, budget int) (uint64, int) {
	lull := r.lull()
	if budget <= 0 || lull == 0 {
		r.counts.lost(0)
		return c.Load(), budget
	}
	now, spells := awaitLull(c, budget, lull, spinSpell)
	r.counts.lost(spells)
	return now, budget - spells
}

// awaitLull keeps a goroutine that lost a race for counter c (head or tail)
// off c while others advance it fast. It waits a spell (spell; spinSpell
// outside tests) and looks again: it returns c's value once c advanced by
// fewer than lull during a spell, c is closed, or budget spells have
// passed, with the number of spells.
//
// Why: retrying at once pulls c's cache line back from the winner; with two
// goroutines taking tiny jobs, the line then crosses cores on every pop and
// each pop waits for it. On the Turin-class VM two workers draining a
// backlog took about 200ns per job, one alone 35ns. While the others keep
// up without the loser (lull or more jobs per spell), it stays off, so tiny
// jobs are taken in streaks by one goroutine at a time, as a contended
// runtime mutex hands them out. A pool whose jobs take a microsecond or
// more sees a lull at once (see lull), so the loser loses one spell per
// lost race. Spinning rather than yielding keeps the goroutine on its core:
// runtime.Gosched after the first spell made the serial benchmark 1.5×
// slower (abtest, 6 rounds).
func awaitLull(c *atomic.Uint64, budget int, lull uint64, spell func()) (now uint64, spells int) {
	now = c.Load()
	for spells < budget && now&closedBit == 0 { // a push must see a close at once
		seen := now
		spell()
		spells++
		now = c.Load()
		if now&closedBit == 0 && now-seen < lull {
			break
		}
	}
	return now, spells
}

// spinSpell is one spell of awaitLull: about a microsecond of computation
// that touches no shared memory (BenchmarkSpin).
func spinSpell() { spin(spellIters) }

// setProcs records GOMAXPROCS n (see procs).
func (r *ring[T]) setProcs(n int) { r.procs.Store(int64(n)) }

// lull is awaitLull's threshold, from GOMAXPROCS n. The loser holds a P
// while it spins, so at most n-1 others run, and with jobs of a
// microsecond or more they take fewer than n per spell: lull is n. It is
// at most maxLull, so that on a machine with many Ps a lone winner taking
// tiny jobs (35ns each here, about 28 per spell) still counts as a stream;
// there many workers with 1µs jobs do too, and a loser idles up to a budget
// of spells while the others drain the queue. (Measured at GOMAXPROCS=2
// only.) It is 0 with one P, where the winner cannot even run while the
// loser spins: nobody steps aside.
func (r *ring[T]) lull() uint64 {
	switch n := r.procs.Load(); {
	case n < 2:
		return 0
	case n > maxLull:
		return maxLull
	default:
		return uint64(n)
	}
}

const (
	spellIters = 800 // about 1µs: 1.2ns per iteration on the Turin-class VM (BenchmarkSpin)
	maxSpells  = 16  // per push or pop call
	maxLull    = 8
)

// spinSink keeps spin's result alive, so the compiler keeps its loop.
var spinSink atomic.Uint64

// spin runs n steps of a dependent multiply-add chain: a delay that touches
// no shared memory and, unlike runtime.Gosched, keeps the goroutine (and
// its cache) on its core.
//
//go:noinline
func spin(n int) {
	x := uint64(n)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	if x == 0 {
		spinSink.Store(x) // rare, and harmless; the compiler cannot drop the loop
	}
}

// index returns pos % size: the slot of position pos. A 64-bit division
// costs tens of cycles on the hot path, twice per job; multiplying by the
// precomputed reciprocal underestimates the quotient by at most one, which
// one compare corrects.
//
// Consecutive positions are neighbours, so several share a cache line (four
// int jobs per 64 bytes), as in a channel's buffer. While a busy pool's
// workers run a line or more behind its producers, the producer fills a
// line, then a worker reads and frees it: the line crosses between cores
// twice per line rather than twice per job. A worker right behind each
// push (a paced producer, see BenchmarkSubmitPaced) moves the line per
// job with either layout. Before 8895b6e the ring spread
// consecutive positions 8 slots apart, against the false sharing of a push
// and the pop right behind it, measured with the dispatch of that time.
// With today's (idle workers spin one round and park, losers of a race
// step aside) a busy pool's workers run behind the producer. On the Turin-class VM (abtest, 6 rounds,
// all faster; new/old time) packed slots took 0.70× to 0.75× in the serial
// benchmarks, 0.79× to 0.83× with 16 submitters and 0.86× to 0.95× paced;
// the ~1µs CPU job 1.03× (10 rounds, none faster), as at the start of
// issue 12 (34e7f53: 1.00×).
func (r *ring[T]) index(pos uint64) uint64 {
	q, _ := bits.Mul64(pos, r.recip)
	i := pos - q*r.size
	if i >= r.size {
		i -= r.size
	}
	return i
}

// len is the number of accepted jobs not yet popped. It is exact at rest,
// never negative and never more than size (pops and pushes between the two
// loads could make t - h exceed it).
func (r *ring[T]) len() int {
	h := r.head.Load() // head first: tail can only have grown since
	t := r.tail.Load() &^ closedBit
	return int(min(t-h, r.size))
}

// pending reports whether a job has been accepted and not yet popped (it may
// still be being written).
func (r *ring[T]) pending() bool { return r.len() > 0 }

// ready reports whether the job at head has been published, reading only
// lines that consumers write or must read anyway: head and that job's slot.
// An idle worker polls it instead of pending, which reads tail: a line the
// producer writes on every push, so each poll would cost the next push a
// cross-core transfer. A false answer is not final (a push may be under
// way); a true one may be stale once another consumer pops.
func (r *ring[T]) ready() bool {
	pos := r.head.Load()
	seq := r.slots[r.index(pos)].seq.Load()
	return int64(seq-(2*pos+1)) >= 0
}

// accepted is how many jobs were ever pushed.
func (r *ring[T]) accepted() uint64 { return r.tail.Load() &^ closedBit }

// close stops intake: every later push returns pushClosed. Pushes that had
// already claimed a position complete normally.
func (r *ring[T]) close() {
	r.tail.Or(closedBit)
	r.shut.Store(true)
}

// shutting reports whether close has finished. It may lag closed by a
// moment, so it can only tell an idle consumer to look closer; unlike
// closed, it does not read tail.
func (r *ring[T]) shutting() bool { return r.shut.Load() }

// closed reports whether close was called.
func (r *ring[T]) closed() bool { return r.tail.Load()&closedBit != 0 }
