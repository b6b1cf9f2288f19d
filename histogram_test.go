package workpool

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/testing/protocmp"
)

// TestHistogramMatchesPrometheus feeds the same durations, from several
// goroutines, to the pool's sharded histogram and to client_golang's, and
// expects the same buckets, count and sum (bounds are inclusive: le).
func TestHistogramMatchesPrometheus(t *testing.T) {
	bounds := []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10}
	ours := newHistogram(prometheus.NewDesc("d_seconds", "help", nil, nil), bounds)
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Help: "help", Buckets: bounds})
	durations := []time.Duration{0, time.Nanosecond, 10 * time.Millisecond, 10*time.Millisecond + 1,
		49 * time.Millisecond, 100 * time.Millisecond, 999 * time.Millisecond, time.Second,
		2500 * time.Millisecond, 7 * time.Second, 10 * time.Second, 11 * time.Second, time.Hour}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				d := durations[(i+g)%len(durations)] + time.Duration(g) // vary the low bits: every shard
				ours.observe(d)
				ref.Observe(d.Seconds())
			}
		}()
	}
	wg.Wait()
	var got, want dto.Metric
	if err := ours.metric().Write(&got); err != nil {
		t.Fatal(err)
	}
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.GetHistogram().GetBucket(), got.GetHistogram().GetBucket(), protocmp.Transform()); diff != "" {
		t.Errorf("buckets (-client_golang +ours):\n%s", diff)
	}
	if g, w := got.GetHistogram().GetSampleCount(), want.GetHistogram().GetSampleCount(); g != w || g != 4000 {
		t.Errorf("count = %d; want %d (client_golang) and 4000", g, w)
	}
	if g, w := got.GetHistogram().GetSampleSum(), want.GetHistogram().GetSampleSum(); g-w > 1e-6 || w-g > 1e-6 {
		t.Errorf("sum = %v; want %v", g, w)
	}
	if n := testing.AllocsPerRun(100, func() { ours.observe(time.Millisecond) }); n != 0 {
		t.Errorf("observe allocates %v times; want 0", n)
	}
}

// TestHistogramMatchesPrometheusRandom is a property test: for random bucket
// layouts and random durations, many of them on or next to a bound, the
// sharded histogram exposes the same buckets and count as client_golang's
// Histogram fed the same values in seconds, the sum within float rounding,
// and a created timestamp as it does.
func TestHistogramMatchesPrometheusRandom(t *testing.T) {
	seed := time.Now().UnixNano()
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	awkward := []float64{.01, .05, 1.68, 2.05, .1, .3, 1e-9, 2e-9, .000123, 7.77, 3600}
	for round := range 200 {
		// A layout: strictly increasing bounds, some of them awkward decimals.
		set := map[float64]bool{}
		n := 1 + r.IntN(12)
		if round%4 == 0 {
			n = 35 + r.IntN(30) // client_golang switches to a binary search at 35
		}
		for range n {
			if r.IntN(2) == 0 {
				set[awkward[r.IntN(len(awkward))]] = true
			} else {
				set[math.Round(r.Float64()*r.Float64()*20*1e6)/1e6] = true
			}
		}
		var bounds []float64
		for b := range set {
			if b > 0 {
				bounds = append(bounds, b)
			}
		}
		if len(bounds) == 0 {
			bounds = []float64{1}
		}
		slices.Sort(bounds)

		ours := newHistogram(prometheus.NewDesc("d_seconds", "help", nil, nil), bounds)
		ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Help: "help", Buckets: bounds})
		for range 500 {
			var d time.Duration
			switch r.IntN(3) {
			case 0: // on a bound, or a nanosecond either side
				b := bounds[r.IntN(len(bounds))]
				d = time.Duration(math.Round(b*1e9)) + time.Duration(r.IntN(3)-1)
			case 1:
				d = time.Duration(r.Int64N(int64(25 * time.Second)))
			default:
				d = time.Duration(r.Int64N(int64(time.Millisecond)))
			}
			d = max(d, 0)
			ours.observe(d)
			ref.Observe(d.Seconds())
		}
		var got, want dto.Metric
		if err := ours.metric().Write(&got); err != nil {
			t.Fatal(err)
		}
		if err := ref.Write(&want); err != nil {
			t.Fatal(err)
		}
		gh, wh := got.GetHistogram(), want.GetHistogram()
		if diff := cmp.Diff(wh.GetBucket(), gh.GetBucket(), protocmp.Transform()); diff != "" {
			t.Fatalf("seed %d round %d, bounds %v: buckets (-client_golang +ours):\n%s", seed, round, bounds, diff)
		}
		if gh.GetSampleCount() != wh.GetSampleCount() {
			t.Fatalf("seed %d round %d: count %d; want %d", seed, round, gh.GetSampleCount(), wh.GetSampleCount())
		}
		if g, w := gh.GetSampleSum(), wh.GetSampleSum(); math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Fatalf("seed %d round %d: sum %v; want %v", seed, round, g, w)
		}
		if (gh.GetCreatedTimestamp() == nil) != (wh.GetCreatedTimestamp() == nil) {
			t.Fatalf("created timestamp: ours %v, client_golang %v", gh.GetCreatedTimestamp(), wh.GetCreatedTimestamp())
		}
	}
}

// TestHistogramBoundExactly is the reported case: bounds {.01, .05, 1.68,
// 2.05} and observations of exactly 1.68 s land in the le="1.68" bucket, as
// client_golang puts them.
func TestHistogramBoundExactly(t *testing.T) {
	bounds := []float64{.01, .05, 1.68, 2.05}
	ours := newHistogram(prometheus.NewDesc("d_seconds", "help", nil, nil), bounds)
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Help: "help", Buckets: bounds})
	for _, d := range []time.Duration{1680 * time.Millisecond, 1680*time.Millisecond - 1, 1680*time.Millisecond + 1, 50 * time.Millisecond} {
		ours.observe(d)
		ref.Observe(d.Seconds())
	}
	var got, want dto.Metric
	_ = ours.metric().Write(&got)
	_ = ref.Write(&want)
	if diff := cmp.Diff(want.GetHistogram().GetBucket(), got.GetHistogram().GetBucket(), protocmp.Transform()); diff != "" {
		t.Errorf("buckets (-client_golang +ours):\n%s", diff)
	}
}

// BenchmarkHistogramObserve compares the sharded histogram with
// client_golang's under 8 goroutines observing at once (the pool's workers
// with the Prometheus adapter on), which decides whether ours is worth
// keeping.
func BenchmarkHistogramObserve(b *testing.B) {
	bounds := []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10}
	run := func(b *testing.B, observe func(time.Duration)) {
		b.ReportAllocs()
		b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)) // at least 8 goroutines
		b.RunParallel(func(pb *testing.PB) {
			for d := time.Duration(rand.Uint64() % 1e6); pb.Next(); d++ {
				observe(3*time.Millisecond + d%1000)
			}
		})
	}
	b.Run("sharded", func(b *testing.B) {
		h := newHistogram(prometheus.NewDesc("d_seconds", "help", nil, nil), bounds)
		run(b, h.observe)
	})
	b.Run("client_golang", func(b *testing.B) {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Help: "help", Buckets: bounds})
		run(b, func(d time.Duration) { h.Observe(d.Seconds()) })
	})
}
