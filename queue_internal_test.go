package workpool

import (
	"context"
	"math"
	"runtime"
	"testing"
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
