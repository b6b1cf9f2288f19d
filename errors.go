package workpool

import (
	"context"
	"errors"
	"fmt"
)

// Errors returned by the pool. Compare with errors.Is.
var (
	// ErrQueueFull is returned by [Pool.Submit] when the queue holds
	// QueueSize jobs and the drop policy is [DropNewest]. With [DropOldest]
	// it is the reason handed to the OnDrop hook for an evicted job.
	ErrQueueFull = errors.New("workpool: queue is full")

	// ErrClosed is returned by [Pool.Submit] and [Pool.SubmitWait] once
	// [Pool.Shutdown] has begun or the pool's base context has ended. It is
	// also the reason handed to OnDrop for jobs queued on a pool that was
	// shut down without ever being started.
	ErrClosed = errors.New("workpool: pool is closed")

	// ErrJobTimeout is the error reported to the OnError hook for a handler
	// that returned nil after its job's deadline. It matches
	// context.DeadlineExceeded under errors.Is.
	ErrJobTimeout = fmt.Errorf("workpool: job exceeded its timeout: %w", context.DeadlineExceeded)

	// ErrGoexit is the error reported to the OnError hook for a handler that
	// called runtime.Goexit (as testing.T.FailNow does) instead of returning.
	ErrGoexit = errors.New("workpool: handler called runtime.Goexit")

	// ErrNilContext is returned by [Pool.SubmitWait] and [Pool.Shutdown]
	// when they are given a nil context.
	ErrNilContext = errors.New("workpool: nil context")
)

// DropError is the error handed to the OnDrop hook: why an accepted job will
// not run. Reason names it with the same words as the dropped_jobs_total
// metric's reason label (see [DropReason]); Err is the underlying error, which
// errors.Is sees through Unwrap:
//
//	reason     Err                                 when
//	evicted    ErrQueueFull                        DropOldest made room for a newer job
//	closed     ErrClosed                           queued on a pool shut down before it started
//	shutdown   context.DeadlineExceeded, Canceled  a Shutdown deadline passed before it started
//	canceled   the base context's error            the base context ended before it started
//
// Get the reason with errors.As:
//
//	var de *workpool.DropError
//	if errors.As(err, &de) && de.Reason == workpool.ReasonShutdown { ... }
//
// Each OnDrop call gets a value of its own.
type DropError struct {
	Reason DropReason
	Err    error
}

// Error returns the reason and the underlying error.
func (e *DropError) Error() string {
	return "workpool: job dropped (" + e.Reason.String() + "): " + e.Err.Error()
}

// Unwrap returns the underlying error, so errors.Is(err, ErrQueueFull) and
// errors.Is(err, context.DeadlineExceeded) match as before.
func (e *DropError) Unwrap() error { return e.Err }

// PanicError is the error reported to the OnError hook when a handler
// panics. The worker recovers, records the panic and keeps serving.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the panicking goroutine's stack trace, from runtime/debug.Stack.
	Stack []byte
}

// Error returns the panic value and the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("workpool: job panicked: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}
