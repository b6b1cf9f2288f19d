package workpool

import (
	"context"
	"testing"
	"time"
)

// TestJobContextDoneAfterEnd pins the first Done call on a context that has
// already ended: it must return a closed channel, not close it twice. A
// handler that first looks at ctx.Done() after the pool's base context was
// cancelled, or after its deadline, used to panic.
func TestJobContextDoneAfterEnd(t *testing.T) {
	tests := []struct {
		name  string
		setup func() (*jobContext, error)
	}{
		{"parent canceled", func() (*jobContext, error) {
			parent, cancel := context.WithCancel(context.Background())
			cancel()
			return newJobContext(parent, time.Now().Add(time.Hour)), context.Canceled
		}},
		{"deadline passed", func() (*jobContext, error) {
			return newJobContext(context.Background(), time.Now().Add(-time.Second)), context.DeadlineExceeded
		}},
		{"Err saw the end first", func() (*jobContext, error) {
			parent, cancel := context.WithCancel(context.Background())
			cancel()
			c := newJobContext(parent, time.Now().Add(time.Hour))
			_ = c.Err()
			return c, context.Canceled
		}},
		{"retired before Done", func() (*jobContext, error) {
			c := newJobContext(context.Background(), time.Now().Add(time.Hour))
			c.cancel(context.Canceled)
			return c, context.Canceled
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, want := tt.setup()
			select {
			case <-c.Done():
			default:
				t.Fatal("Done() is not closed on an ended context")
			}
			if err := c.Err(); err != want {
				t.Errorf("Err() = %v; want %v", err, want)
			}
		})
	}
}
