package workpool

import (
	"context"
	"math"
	"runtime"
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

// TestRingPlaceIsPermutation: every slot is used exactly once per round,
// and consecutive positions land at least 8 slots apart.
func TestRingPlaceIsPermutation(t *testing.T) {
	for _, size := range []int{1, 2, 3, 16, 17, 18, 100, 1000, 1024, 4099} {
		r := newRing[int](size, false)
		seen := make([]bool, size)
		for pos := uint64(5 * size); pos < uint64(6*size); pos++ {
			i := r.place(pos)
			if seen[i] {
				t.Fatalf("size %d: slot %d used twice in one round", size, i)
			}
			seen[i] = true
			if size > 16 {
				d := int64(r.place(pos+1)) - int64(i)
				if d < 0 {
					d = -d
				}
				if d < 8 && int64(size)-d < 8 {
					t.Fatalf("size %d: positions %d and %d are %d slots apart", size, pos, pos+1, d)
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
// comes back: after one spell when nobody advances the counter, at once
// when the queue is closed, after more spells (never more than its budget)
// while another goroutine keeps advancing it, and soon after that goroutine
// stops.
func TestAwaitLull(t *testing.T) {
	t.Run("still", func(t *testing.T) {
		var c atomic.Uint64
		c.Store(41)
		if now, spells := awaitLull(&c, maxSpells, 2); now != 41 || spells != 1 {
			t.Errorf("awaitLull on a still counter = %d, %d spells; want 41 after 1 spell", now, spells)
		}
	})
	t.Run("closed", func(t *testing.T) {
		var c atomic.Uint64
		c.Store(closedBit | 1000)
		if now, spells := awaitLull(&c, maxSpells, 2); now != closedBit|1000 || spells != 0 {
			t.Errorf("awaitLull on a closed counter = %#x, %d spells; want %#x at once", now, spells, uint64(closedBit|1000))
		}
	})
	t.Run("budget", func(t *testing.T) {
		var c atomic.Uint64
		if _, spells := awaitLull(&c, 0, 2); spells != 0 {
			t.Errorf("awaitLull with no budget spun %d spells; want 0", spells)
		}
	})
	if runtime.NumCPU() < 2 || runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the other subtests need a second CPU for the goroutine that advances the counter")
	}
	// advance runs a goroutine that advances c until stop returns true,
	// and returns once it has begun. The caller waits on this P rather than
	// on a channel the goroutine closes: that would hand the caller to the
	// goroutine's P, where the two would take turns instead of running side
	// by side.
	advance := func(c *atomic.Uint64, stop func() bool) (done chan struct{}) {
		done = make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i%32 != 0 || !stop(); i++ {
				c.Add(1)
			}
		}()
		for deadline := time.Now().Add(time.Second); c.Load() < 100 && time.Now().Before(deadline); {
		}
		return done
	}
	// The OS may deschedule the advancing goroutine at any moment, so each
	// subtest makes several attempts, spread out in time, and asks for
	// one that shows the behaviour.
	const attempts = 40
	t.Run("streaming", func(t *testing.T) {
		best := 0
		for range attempts {
			var c atomic.Uint64
			var stop atomic.Bool
			done := advance(&c, stop.Load)
			now, spells := awaitLull(&c, maxSpells, 2)
			stop.Store(true)
			<-done
			if spells > maxSpells || now > c.Load() {
				t.Fatalf("awaitLull = %d after %d spells; want at most %d spells and a value the counter had", now, spells, maxSpells)
			}
			if best = max(best, spells); best == maxSpells {
				return
			}
			time.Sleep(time.Millisecond) // spread the attempts out, past a busy moment
		}
		t.Errorf("awaitLull while another goroutine advanced the counter spun at most %d spells; want %d", best, maxSpells)
	})
	t.Run("stops", func(t *testing.T) {
		// The advancing goroutine stops after about 4 spells: awaitLull
		// must come back soon after, not spin out its budget.
		var got []int
		for range attempts {
			var c atomic.Uint64
			var until atomic.Int64
			until.Store(math.MaxInt64)
			done := advance(&c, func() bool { return time.Now().UnixNano() > until.Load() })
			until.Store(time.Now().Add(4 * time.Microsecond).UnixNano())
			_, spells := awaitLull(&c, maxSpells, 2)
			<-done
			if spells > 1 && spells < maxSpells {
				return
			}
			got = append(got, spells)
			time.Sleep(time.Millisecond)
		}
		t.Errorf("awaitLull while the other goroutine advanced the counter for 4µs and stopped spun %v spells; want one attempt with more than 1 and fewer than %d", got, maxSpells)
	})
}

// TestLostRaceStaysCorrect races two consumers and two producers through a
// small ring, where some races for head and tail are lost (and the losers
// step aside), and checks that every value comes out exactly once.
func TestLostRaceStaysCorrect(t *testing.T) {
	const perProducer = 20000
	r := newRing[int](8, false)
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() {
			for i := range perProducer {
				for r.push(p*perProducer+i, 0) != pushed {
					runtime.Gosched()
				}
			}
		})
	}
	seen := make([]atomic.Int32, 2*perProducer)
	var taken atomic.Int64
	deadline := time.Now().Add(time.Minute) // fail, rather than hang, if a value is lost
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
