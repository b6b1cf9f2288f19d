package workpool_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/workpool-go/workpool"
)

// Regression tests for bugs found by the reliability work (issue 6). Each
// one pins the interleaving that went wrong; they run in a synctest bubble so
// that "still blocked" is a fact, not a guess.

// evictionInShutdown sets up a pool whose only job 0 is running and a
// DropOldest submitter that has evicted job 1 and sits in OnDrop while
// Shutdown starts. It returns the channel Shutdown's result arrives on and
// the functions that release OnDrop and job 0.
func evictionInShutdown(t *testing.T, shutdownCtx context.Context) (shut <-chan error, releaseDrop, releaseJob func()) {
	t.Helper()
	jobGate, dropGate := make(chan struct{}), make(chan struct{})
	started := make(chan struct{})
	p, err := workpool.New(func(ctx context.Context, n int) error {
		if n == 0 {
			close(started)
			<-jobGate // ignores its context
		}
		return nil
	}, workpool.WithWorkers(1), workpool.WithQueueSize(1), workpool.WithDropPolicy(workpool.DropOldest),
		workpool.WithShutdownTimeout(time.Hour),
		workpool.OnDrop(func(n int, err error) {
			if n == 1 {
				<-dropGate
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	if err := p.Submit(0); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	go p.Submit(2) // evicts job 1 and blocks in OnDrop(1); then finds the pool closed
	synctest.Wait()
	errc := make(chan error, 1)
	go func() { errc <- p.Shutdown(shutdownCtx) }()
	synctest.Wait()
	return errc, func() { close(dropGate) }, func() { close(jobGate) }
}

// TestShutdownWaitsForEvictionDrop: a job evicted by a DropOldest Submit
// was counted as dropped without waking Shutdown, so a Shutdown that was
// waiting only for that drop slept until its deadline and then reported
// DeadlineExceeded although every job had ended.
func TestShutdownWaitsForEvictionDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shut, releaseDrop, releaseJob := evictionInShutdown(t, context.Background())
		releaseJob() // job 0 ends, the queue is empty: the worker exits
		synctest.Wait()
		releaseDrop() // the last accepted job is accounted for
		synctest.Wait()
		select {
		case err := <-shut:
			if err != nil {
				t.Fatalf("Shutdown = %v; want nil", err)
			}
		default:
			t.Fatal("Shutdown still waiting after every job ended")
		}
	})
}

// TestStopHardWaitsForEvictionDrop: the same missed wake-up after a
// shutdown deadline hung Shutdown for good while a handler ignored its
// context.
func TestStopHardWaitsForEvictionDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		shut, releaseDrop, releaseJob := evictionInShutdown(t, ctx)
		defer releaseJob()
		time.Sleep(2 * time.Second) // past the deadline: Shutdown waits for OnDrop(1)
		releaseDrop()
		synctest.Wait()
		select {
		case err := <-shut:
			if err != context.DeadlineExceeded {
				t.Fatalf("Shutdown = %v; want context.DeadlineExceeded", err)
			}
		default:
			t.Fatal("Shutdown past its deadline still waiting after the last drop returned")
		}
	})
}

// TestSubmitWaitPassesRoomOn: when two slots freed while two SubmitWait
// callers waited, the two wake-up tokens could merge into one; the caller
// that took it pushed its job and did not pass the token on, so the other
// stayed blocked with room in the queue until some later pop. The losing
// interleaving (both callers between their failed push and their select when
// the slots free) cannot be forced from outside the package, so this test
// checks the scenario and repeats it; TestSubmitWaitMergedToken (white-box)
// builds the losing state directly and fails without the fix.
func TestSubmitWaitPassesRoomOn(t *testing.T) {
	for range 50 {
		synctest.Test(t, func(t *testing.T) {
			gate, hold := make(chan struct{}), make(chan struct{})
			gateOpen := false
			p, err := workpool.New(func(ctx context.Context, n int) error {
				switch n {
				case 0:
					<-gate
				case 2:
					<-hold
				}
				return nil
			}, workpool.WithWorkers(1), workpool.WithQueueSize(2))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = p.Shutdown(ctx) // releases a blocked SubmitWait
				close(hold)
				if !gateOpen {
					close(gate)
				}
			}()
			p.Start()
			for i := range 3 {
				if err := p.Submit(i); err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // job 0 runs, then 1 and 2 are queued: full
			}
			var ok atomic.Int32
			for i := 10; i < 12; i++ {
				go func() {
					if err := p.SubmitWait(context.Background(), i); err == nil {
						ok.Add(1)
					}
				}()
			}
			synctest.Wait()
			close(gate) // job 0 ends; 1 runs and ends; 2 runs and holds: two slots free
			gateOpen = true
			synctest.Wait()
			if got := ok.Load(); got != 2 {
				t.Fatalf("SubmitWait callers done = %d with %d queued of 2; want 2", got, p.QueueDepth())
			}
		})
	}
}

// TestJobContextDoneAfterEnd: the first Done call on a job context whose
// deadline had passed, or whose pool had stopped hard, closed its channel
// twice and panicked inside the handler ("close of closed channel"). Found by
// FuzzPool (testdata/fuzz/FuzzPool/jobctx_done_after_end).
func TestJobContextDoneAfterEnd(t *testing.T) {
	tests := []struct {
		name string
		// end makes the job's context end before the handler first calls Done.
		end  func(cancelBase context.CancelFunc)
		want error
	}{
		{"deadline passed", func(context.CancelFunc) { time.Sleep(2 * time.Second) }, context.DeadlineExceeded},
		{"pool stopped", func(cancel context.CancelFunc) { cancel(); synctest.Wait() }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base, cancel := context.WithCancel(context.Background())
				defer cancel()
				proceed := make(chan struct{})
				got := make(chan error, 1)
				p, err := workpool.New(func(ctx context.Context, n int) error {
					<-proceed
					<-ctx.Done() // first call: the context has already ended
					got <- ctx.Err()
					return nil
				}, workpool.WithJobTimeout(time.Second), workpool.WithContext(base),
					workpool.OnError(func(n int, err error) {
						var pe *workpool.PanicError
						if errors.As(err, &pe) {
							t.Errorf("handler panicked: %v", pe.Value)
						}
					}))
				if err != nil {
					t.Fatal(err)
				}
				p.Start()
				if err := p.Submit(1); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				tt.end(cancel)
				close(proceed)
				synctest.Wait()
				select {
				case err := <-got:
					if err != tt.want {
						t.Errorf("ctx.Err() after Done = %v; want %v", err, tt.want)
					}
				default:
					t.Error("handler did not get past ctx.Done()")
				}
				_ = p.Shutdown(context.Background())
			})
		})
	}
}

// TestHookGoexit: a hook that calls runtime.Goexit (as t.FailNow does when a
// test fails from inside OnError or OnDrop) skipped the counting that
// followed it. From OnError the job never counted as completed: Active stayed
// 1 and Submitted != Completed + Dropped for good. From OnDrop the drop
// never counted, so Shutdown waited for it until its deadline (and a hard
// stop waited forever).
func TestHookGoexit(t *testing.T) {
	t.Run("OnError", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, err := workpool.New(func(ctx context.Context, n int) error { return errFuzz },
				workpool.WithWorkers(1), workpool.OnError(func(int, error) { runtime.Goexit() }))
			if err != nil {
				t.Fatal(err)
			}
			p.Start()
			for i := range 3 {
				if err := p.Submit(i); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown = %v; want nil", err)
			}
			checkStats(t, p.Stats(), workpool.Stats{Workers: 1, QueueCapacity: 1000, Submitted: 3, Completed: 3, Failed: 3})
		})
	})
	t.Run("OnDrop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, err := workpool.New(func(ctx context.Context, n int) error { return nil },
				workpool.WithQueueSize(1), workpool.WithDropPolicy(workpool.DropOldest),
				workpool.OnDrop(func(int, error) { runtime.Goexit() }))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Submit(0); err != nil {
				t.Fatal(err)
			}
			go p.Submit(1) // pushes job 1, evicts job 0; OnDrop ends this goroutine
			synctest.Wait()
			p.Start()
			start := time.Now()
			if err := p.Shutdown(context.Background()); err != nil || time.Since(start) != 0 {
				t.Fatalf("Shutdown = %v after %v; want nil at once", err, time.Since(start))
			}
			// Job 1 was accepted before OnDrop ran: it runs, job 0 is dropped.
			checkStats(t, p.Stats(), workpool.Stats{Workers: 10, QueueCapacity: 1, Submitted: 2, Completed: 1, Dropped: 1})
		})
	})
}

// TestHookGoexitInDrain: an OnDrop hook that called runtime.Goexit while
// Shutdown dropped the queue of a never-started pool (or a hard stop
// dropped it) ended the drain halfway; the jobs left in the queue were never
// accounted for and every later Shutdown waited for them forever. Found by
// FuzzPool (testdata/fuzz/FuzzPool/hooks_goexit_never_started_drain).
func TestHookGoexitInDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var drops atomic.Int32
		p, err := workpool.New(func(ctx context.Context, n int) error { return nil },
			workpool.OnDrop(func(int, error) { drops.Add(1); runtime.Goexit() }))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() { defer close(done); p.Shutdown(context.Background()) }() // ended by OnDrop
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown after the drain's goroutine ended = %v; want nil", err)
		}
		if got := drops.Load(); got != 4 {
			t.Errorf("OnDrop called %d times; want 4", got)
		}
		checkStats(t, p.Stats(), workpool.Stats{Workers: 10, QueueCapacity: 1000, Submitted: 4, Dropped: 4})
	})
}
