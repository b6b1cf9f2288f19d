package workpool

import (
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
