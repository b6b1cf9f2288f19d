package natsq

import (
	"testing"
	"time"
)

// White-box invariants of the tracker: every job is settled exactly once,
// held never exceeds capacity as the fetch loop uses it, stop hands back
// only jobs in the given states, and beat skips settled jobs.
func TestTracker(t *testing.T) {
	tr := newTracker(3, 2)
	now := time.Now()
	done := make(chan struct{})
	if n := tr.free(done); n != 3 {
		t.Fatalf("free on an empty tracker = %d; want 3", n)
	}
	jobs := []*job{{}, {}, {}}
	for _, j := range jobs {
		if !tr.add(j, now) {
			t.Fatal("add before stop = false; want true")
		}
	}
	if got := tr.len(); got != 3 {
		t.Fatalf("len = %d; want 3", got)
	}

	// Full: free waits for batch (2) free slots, so one settle is not enough.
	got := make(chan int, 1)
	go func() { got <- tr.free(done) }()
	if !tr.start(jobs[0]) || !tr.settle(jobs[0]) {
		t.Fatal("start and settle of a queued job failed")
	}
	if tr.settle(jobs[0]) {
		t.Error("second settle = true; want false: a job is settled once")
	}
	if tr.start(jobs[0]) {
		t.Error("start of a settled job = true; want false")
	}
	select {
	case n := <-got:
		t.Fatalf("free returned %d with 1 slot free; want it to wait for 2", n)
	case <-time.After(20 * time.Millisecond): // a negative check: no event to wait for
	}
	tr.settle(jobs[1])
	if n := <-got; n != 2 {
		t.Errorf("free after two settles = %d; want 2", n)
	}

	// beat reaches held jobs last reported at or before the cutoff only.
	var beaten []*job
	tr.beat(now.Add(-time.Second), now, func(j *job) { beaten = append(beaten, j) })
	if len(beaten) != 0 {
		t.Errorf("beat with an earlier cutoff reached %d jobs; want 0", len(beaten))
	}
	later := now.Add(time.Second)
	tr.beat(now, later, func(j *job) { beaten = append(beaten, j) })
	if len(beaten) != 1 || beaten[0] != jobs[2] {
		t.Errorf("beat reached %v; want only the one held job", beaten)
	}

	// stop hands back queued jobs only, and refuses new ones.
	running := &job{}
	tr.add(running, now)
	tr.start(running)
	back := tr.stop(jobQueued)
	if len(back) != 1 || back[0] != jobs[2] {
		t.Errorf("stop(queued) = %v; want the queued job", back)
	}
	if tr.add(&job{}, now) {
		t.Error("add after stop = true; want false")
	}
	if n := tr.free(done); n != 0 {
		t.Errorf("free after stop = %d; want 0", n)
	}
	if back := tr.stop(jobQueued, jobRunning); len(back) != 1 || back[0] != running {
		t.Errorf("stop(queued, running) = %v; want the running job", back)
	}
	if tr.settle(running) {
		t.Error("settle after stop handed it back = true; want false")
	}
	if got := tr.len(); got != 0 {
		t.Errorf("len at the end = %d; want 0", got)
	}
}
