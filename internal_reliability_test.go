package workpool

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// TestSubmitWaitMergedToken pins the state TestSubmitWaitPassesRoomOn can
// only hope to hit: two slots freed while both SubmitWait callers were
// between their failed push and their select, so the two room tokens merged
// into one. The caller that takes it must pass it on, or the other waits
// with room in the queue until some later pop.
func TestSubmitWaitMergedToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New(func(context.Context, int) error { return nil }, WithQueueSize(2))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Shutdown(context.Background())
		for i := range 2 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 2)
		for i := 10; i < 12; i++ {
			go func() { done <- p.SubmitWait(context.Background(), i) }()
		}
		synctest.Wait() // both wait for room
		// Two pops free two slots; their two signals merged into one token.
		for range 2 {
			job, _, ok := p.q.pop()
			if !ok {
				t.Fatal("pop failed on a full queue")
			}
			p.drop(job, ReasonEvicted, ErrQueueFull, false) // keeps the accounting whole
		}
		p.signalRoom()
		synctest.Wait()
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("SubmitWait = %v; want nil", err)
				}
			default:
				t.Fatalf("a SubmitWait caller still waits with %d of 2 slots used", p.q.len())
			}
		}
	})
}

// TestStatsBoundsMidRead: Stats loads each counter separately, so a snapshot
// can see a worker's started count a job or two past its completed count,
// and the ring's tail more than size past the head it loaded first. Neither
// may show as more running jobs than workers or more queued jobs than the
// queue holds. The states are faked here: the real windows are nanoseconds.
func TestStatsBoundsMidRead(t *testing.T) {
	p, err := New(func(context.Context, int) error { return nil }, WithWorkers(1), WithQueueSize(4))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	// (A worker's progress is one word, read once: it cannot tear.)
	// Pops and pushes between the loads of head and tail.
	p.q.tail.Store(7)
	s := p.Stats()
	if s.Active > s.Workers || s.Queued > s.QueueCapacity || p.QueueDepth() > s.QueueCapacity {
		t.Errorf("Stats = %+v, QueueDepth() = %d; want Active <= Workers, Queued <= QueueCapacity", s, p.QueueDepth())
	}
	// Restore a consistent state for Shutdown.
	p.q.tail.Store(0)
}

// TestSubmitWaitParkedReleased: a SubmitWait caller that is really parked (announced in waiters) is
// released with ErrClosed when Shutdown begins.
func TestSubmitWaitParkedReleased(t *testing.T) {
	release := make(chan struct{})
	p, err := New(func(ctx context.Context, n int) error { <-release; return nil }, WithWorkers(1), WithQueueSize(1))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	p.Submit(0)
	for p.Stats().Active != 1 {
		runtime.Gosched()
	}
	p.Submit(1)
	errc := make(chan error, 1)
	go func() { errc <- p.SubmitWait(context.Background(), 2) }()
	for deadline := time.Now().Add(10 * time.Second); p.waiters.Load() != 1; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("SubmitWait never parked")
		}
	}
	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(context.Background()) }()
	if err := <-errc; err != ErrClosed {
		t.Errorf("parked SubmitWait at shutdown = %v; want ErrClosed", err)
	}
	close(release)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}
