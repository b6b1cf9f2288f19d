package workpool

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestRingIndex(t *testing.T) {
	sizes := []int{1, 2, 3, 7, 10, 1000, 1024, 1 << 20, 999_983, MaxQueueSize}
	positions := []uint64{0, 1, 2, 63, 1 << 32, 1<<62 + 12345, 1<<63 - 1, closedBit - 2}
	for _, size := range sizes {
		r := &ring[int]{size: uint64(size), recip: math.MaxUint64 / uint64(size)}
		for _, pos := range positions {
			for d := uint64(0); d < 3; d++ {
				p := pos + d
				if got, want := r.index(p), p%uint64(size); got != want {
					t.Fatalf("size %d: index(%d) = %d; want %d", size, p, got, want)
				}
			}
		}
	}
}

func TestRingFIFOAndCapacity(t *testing.T) {
	for _, size := range []int{1, 2, 3, 5, 8, 17, 100} {
		r := newRing[int](size, true)
		next, want := 0, 0
		for round := range 5 {
			for range size {
				if res := r.push(next, int64(next)); res != pushed {
					t.Fatalf("size %d round %d: push(%d) = %v; want pushed", size, round, next, res)
				}
				next++
			}
			if res := r.push(-1, 0); res != pushFull {
				t.Fatalf("size %d: push on a full ring = %v; want pushFull", size, res)
			}
			if got := r.len(); got != size {
				t.Fatalf("size %d: len = %d; want %d", size, got, size)
			}
			for range size {
				v, stamp, ok := r.pop()
				if !ok || v != want || stamp != int64(want) {
					t.Fatalf("size %d: pop = %d, %d, %v; want %d", size, v, stamp, ok, want)
				}
				want++
			}
			if _, _, ok := r.pop(); ok {
				t.Fatalf("size %d: pop on an empty ring succeeded", size)
			}
		}
		r.push(1, 0)
		r.close()
		if res := r.push(2, 0); res != pushClosed {
			t.Fatalf("push after close = %v; want pushClosed", res)
		}
		if v, _, ok := r.pop(); !ok || v != 1 {
			t.Fatalf("pop after close = %d, %v; want the queued job", v, ok)
		}
		if r.accepted() != uint64(5*size+1) {
			t.Fatalf("accepted = %d; want %d", r.accepted(), 5*size+1)
		}
	}
}

// TestRingModel runs a seeded random mix of pushes and pops against a
// slice, so that head and tail wrap around at every offset, not only at
// round boundaries. After each step it checks the result, the value and
// stamp popped, len and ready.
func TestRingModel(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4, 5, 7, 8, 16, 17, 100} {
		rng := rand.New(rand.NewPCG(uint64(size), 12))
		r := newRing[int](size, true)
		var model []int
		next := 0
		for step := range 20 * size {
			if rng.IntN(2) == 0 {
				res := r.push(next, int64(-next))
				want := pushed
				if len(model) == size {
					want = pushFull
				}
				if res != want {
					t.Fatalf("size %d step %d: push with %d queued = %v; want %v", size, step, len(model), res, want)
				}
				if res == pushed {
					model = append(model, next)
				}
				next++
			} else {
				v, stamp, ok := r.pop()
				switch {
				case len(model) == 0 && ok:
					t.Fatalf("size %d step %d: pop on an empty ring returned %d", size, step, v)
				case len(model) > 0 && (!ok || v != model[0] || stamp != int64(-model[0])):
					t.Fatalf("size %d step %d: pop = %d, %d, %v; want %d, %d", size, step, v, stamp, ok, model[0], -model[0])
				}
				if ok {
					model = model[1:]
				}
			}
			if got := r.len(); got != len(model) {
				t.Fatalf("size %d step %d: len = %d; want %d", size, step, got, len(model))
			}
			if got := r.ready(); got != (len(model) > 0) {
				t.Fatalf("size %d step %d: ready = %v with %d queued", size, step, got, len(model))
			}
		}
	}
}

// TestRingLayout pins the layout index describes: position pos lives in
// slots[pos % size], its stamp in stamps[pos % size].
func TestRingLayout(t *testing.T) {
	const size = 10
	r := newRing[int](size, true)
	for pos := range 2 * size {
		if pos >= size {
			r.pop()
		}
		r.push(100+pos, int64(pos))
		i := pos % size
		if s := &r.slots[i]; s.val != 100+pos || s.seq.Load() != uint64(2*pos+1) || r.stamps[i] != int64(pos) {
			t.Fatalf("position %d: slots[%d] = %d, seq %d, stamp %d; want %d, %d, %d",
				pos, i, s.val, s.seq.Load(), r.stamps[i], 100+pos, 2*pos+1, pos)
		}
	}
	for pos := size; pos < 2*size; pos++ {
		r.pop()
		if i, want := pos%size, uint64(2*(pos+size)); r.slots[i].seq.Load() != want {
			t.Fatalf("after the pop at %d: slots[%d].seq = %d; want %d", pos, i, r.slots[i].seq.Load(), want)
		}
	}
}

// TestRingReadyWhileWriting: a claimed slot whose job is not yet published
// is not ready, though len counts it.
func TestRingReadyWhileWriting(t *testing.T) {
	r := newRing[int](4, false)
	r.tail.Store(1) // a producer claimed position 0 and is still writing it
	if r.ready() {
		t.Fatal("ready with the only job still being written")
	}
	if r.len() != 1 {
		t.Fatalf("len = %d; want 1", r.len())
	}
	if _, _, ok := r.pop(); ok {
		t.Fatal("pop took a job still being written")
	}
	r.slots[0].seq.Store(1) // published
	if !r.ready() {
		t.Fatal("not ready once the job is published")
	}
}

// TestRingPushAfterClose: an eviction's replacement push goes in after
// close; an ordinary push does not.
func TestRingPushAfterClose(t *testing.T) {
	r := newRing[int](3, true)
	r.push(1, 10)
	r.close()
	if res := r.push(2, 20); res != pushClosed {
		t.Fatalf("push after close = %v; want pushClosed", res)
	}
	if res := r.pushAt(3, 30, true); res != pushed {
		t.Fatalf("pushAt(afterClose) = %v; want pushed", res)
	}
	if !r.closed() || r.accepted() != 2 {
		t.Fatalf("closed = %v, accepted = %d; want true, 2", r.closed(), r.accepted())
	}
	for _, want := range []int{1, 3} {
		if v, stamp, ok := r.pop(); !ok || v != want || stamp != int64(10*want) {
			t.Fatalf("pop = %d, %d, %v; want %d, %d", v, stamp, ok, want, 10*want)
		}
	}
}

// TestRingReleasesJobs checks that a popped slot no longer references its
// job, so the queue never keeps finished work reachable.
func TestRingReleasesJobs(t *testing.T) {
	r := newRing[*int](2, false)
	v := new(int)
	r.push(v, 0)
	r.pop()
	for i := range r.slots {
		if r.slots[i].val != nil {
			t.Fatalf("slot %d still holds a popped job", i)
		}
	}
}

func TestWorkerSize(t *testing.T) {
	if got := unsafe.Sizeof(worker{}); got%128 != 0 {
		t.Errorf("sizeof(worker) = %d; want a multiple of 128", got)
	}
}

// TestIdleSpinRounds: an idle worker spins one round while the pool has no
// more workers than Ps, the full spinRounds with more, and Resize moves it
// between the two.
func TestIdleSpinRounds(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	p, err := New(func(context.Context, int) error { return nil }, WithWorkers(procs))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if got := p.idleSpinRounds(); got != 1 {
		t.Errorf("%d workers on %d Ps: %d spin rounds; want 1", procs, procs, got)
	}
	if err := p.Resize(procs + 1); err != nil {
		t.Fatal(err)
	}
	if got := p.idleSpinRounds(); got != spinRounds {
		t.Errorf("%d workers on %d Ps: %d spin rounds; want %d", procs+1, procs, got, spinRounds)
	}
	if err := p.Resize(1); err != nil {
		t.Fatal(err)
	}
	if got := p.idleSpinRounds(); got != 1 {
		t.Errorf("1 worker on %d Ps: %d spin rounds; want 1", procs, got)
	}
}

// TestAwaitLull checks when a goroutine that lost a race for head or tail
// comes back, with spells that advance the counter as other goroutines
// would: after one spell when nobody advances it, at once when the queue is
// closed, after the spell in which it closes, after its budget while the
// others stream, and after the first spell in which they slow down.
func TestAwaitLull(t *testing.T) {
	const lull = 4
	// others returns a spell in which the counter advances by each step in
	// turn (by 0 once the steps run out).
	others := func(c *atomic.Uint64, steps ...uint64) func() {
		return func() {
			if len(steps) > 0 {
				c.Add(steps[0])
				steps = steps[1:]
			}
		}
	}
	tests := []struct {
		name       string
		start      uint64
		budget     int
		steps      []uint64
		wantNow    uint64
		wantSpells int
	}{
		{"still", 41, maxSpells, nil, 41, 1},
		{"slow", 41, maxSpells, []uint64{lull - 1}, 44, 1},
		{"closed", closedBit | 1000, maxSpells, []uint64{lull}, closedBit | 1000, 0},
		{"closes", 7, maxSpells, []uint64{lull, closedBit}, closedBit | (7 + lull), 2},
		{"no budget", 7, 0, []uint64{lull}, 7, 0},
		{"stream", 0, maxSpells, slices.Repeat([]uint64{lull}, 100), maxSpells * lull, maxSpells},
		{"small budget", 0, 3, slices.Repeat([]uint64{lull}, 100), 3 * lull, 3},
		{"stream, then a lull", 0, maxSpells, []uint64{lull, lull + 5, lull, 1, lull}, 3*lull + 6, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c atomic.Uint64
			c.Store(tt.start)
			now, spells := awaitLull(&c, tt.budget, lull, others(&c, tt.steps...))
			if now != tt.wantNow || spells != tt.wantSpells {
				t.Errorf("awaitLull = %#x after %d spells; want %#x after %d", now, spells, tt.wantNow, tt.wantSpells)
			}
		})
	}
}

// TestStepAside checks the ring's side: the budget a call has left, the
// threshold GOMAXPROCS sets, and that with one P nobody spins.
func TestStepAside(t *testing.T) {
	for _, tt := range []struct{ procs, lull int }{{1, 0}, {2, 2}, {4, 4}, {8, 8}, {64, maxLull}} {
		r := newRing[int](8, false)
		r.setProcs(tt.procs)
		if got := r.lull(); got != uint64(tt.lull) {
			t.Errorf("setProcs(%d): lull %d; want %d", tt.procs, got, tt.lull)
		}
	}
	r := newRing[int](8, false)
	r.head.Store(5)
	r.setProcs(2)
	if now, left := r.stepAside(&r.head, maxSpells); now != 5 || left != maxSpells-1 {
		t.Errorf("stepAside on a still head = %d with %d spells left; want 5 with %d", now, left, maxSpells-1)
	}
	if now, left := r.stepAside(&r.head, 0); now != 5 || left != 0 {
		t.Errorf("stepAside with no budget = %d with %d spells left; want 5 with 0", now, left)
	}
	r.setProcs(1)
	if now, left := r.stepAside(&r.head, maxSpells); now != 5 || left != maxSpells {
		t.Errorf("stepAside with one P = %d with %d spells left; want 5 with %d", now, left, maxSpells)
	}
}

// TestLostRaceStaysCorrect races two consumers and two producers through a
// small ring, where some races for head and tail are lost (and the losers
// step aside), and checks that every value comes out exactly once.
func TestLostRaceStaysCorrect(t *testing.T) {
	const perProducer = 20000
	r := newRing[int](8, false)
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute) // fail, rather than hang, if a value is lost or duplicated
	for p := range 2 {
		wg.Go(func() {
			for i := range perProducer {
				for r.push(p*perProducer+i, 0) != pushed && time.Now().Before(deadline) {
					runtime.Gosched()
				}
			}
		})
	}
	seen := make([]atomic.Int32, 2*perProducer)
	var taken atomic.Int64
	for range 2 {
		wg.Go(func() {
			for taken.Load() < 2*perProducer && time.Now().Before(deadline) {
				if v, _, ok := r.pop(); ok {
					seen[v].Add(1)
					taken.Add(1)
				} else {
					runtime.Gosched()
				}
			}
		})
	}
	wg.Wait()
	if n := taken.Load(); n != 2*perProducer {
		t.Fatalf("%d values popped in a minute; want %d", n, 2*perProducer)
	}
	for v := range seen {
		if n := seen[v].Load(); n != 1 {
			t.Fatalf("value %d popped %d times; want 1", v, n)
		}
	}
}
