package workpool_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/workpool-go/workpool"
)

// TestDoneAfterDeadline asks for a job context's Done channel only after its
// deadline passed, with nothing having noticed yet: the channel must be
// closed, not closed twice (which panicked in the handler).
func TestDoneAfterDeadline(t *testing.T) {
	errs := make(chan error, 1)
	p := newPool(t, func(ctx context.Context, n int) error {
		deadline, _ := ctx.Deadline()
		for time.Now().Before(deadline) {
			runtime.Gosched() // Deadline and time.Now do not end the context
		}
		<-ctx.Done()
		errs <- ctx.Err()
		return nil
	}, workpool.WithWorkers(1), workpool.WithJobTimeout(time.Millisecond),
		workpool.OnError(func(n int, err error) {
			if _, ok := err.(*workpool.PanicError); ok {
				errs <- err
			}
		}))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errs, "the job"); err != context.DeadlineExceeded {
		t.Errorf("ctx.Err() after <-ctx.Done() = %v; want DeadlineExceeded", err)
	}
}

// TestDoneAfterBaseCancel asks for a job context's Done channel only after
// the pool's base context ended.
func TestDoneAfterBaseCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, cancelled := make(chan struct{}), make(chan struct{})
	errs := make(chan error, 1)
	p := newPool(t, func(jctx context.Context, n int) error {
		close(started)
		<-cancelled
		<-jctx.Done()
		errs <- jctx.Err()
		return nil
	}, workpool.WithContext(ctx), workpool.WithWorkers(1),
		workpool.OnError(func(n int, err error) {
			if _, ok := err.(*workpool.PanicError); ok {
				errs <- err
			}
		}))
	p.Start()
	if err := p.Submit(1); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job")
	cancel()
	close(cancelled)
	if err := recv(t, errs, "the job to end"); err != context.Canceled {
		t.Errorf("ctx.Err() after <-ctx.Done() = %v; want Canceled", err)
	}
}
