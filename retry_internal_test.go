package workpool

import (
	"math"
	"testing"
	"time"
)

// TestRetryBackoffNoOverflow: a MaxBackoff at the top of the Duration range
// caps the wait; float64 rounding must not turn it negative.
func TestRetryBackoffNoOverflow(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 1} {
		r := RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, Multiplier: 1e12, MaxBackoff: math.MaxInt64, Jitter: jitter}.withDefaults()
		if errs := r.validate(); len(errs) != 0 {
			t.Fatal(errs)
		}
		for range 100 {
			if d := r.backoff(2); d < 0 || (jitter == 0 && d != math.MaxInt64) {
				t.Fatalf("jitter %v: backoff(2) = %v; want the cap, never negative", jitter, d)
			}
		}
		if d := r.backoff(1); d != time.Second && jitter == 0 {
			t.Errorf("backoff(1) = %v; want 1s", d)
		}
	}
}
