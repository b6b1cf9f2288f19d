package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/workpool-go/workpool"
)

// dropTally counts the notifications the pool handed to OnDrop, by reason.
type dropTally struct {
	mu       sync.Mutex
	byReason map[string]int // guarded by mu
}

func (d *dropTally) add(reason error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byReason == nil {
		d.byReason = map[string]int{}
	}
	d.byReason[dropReason(reason)]++
}

func (d *dropTally) snapshot() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.byReason)
}

// dropReason names the reason OnDrop was given, with the words of the
// dropped_jobs_total metric's reason label: evicted (by a newer notification
// under the "oldest" drop policy), closed (queued on a pool shut down before
// it started), shutdown (still queued when the shutdown deadline passed) or
// canceled (the pool's base context ended).
func dropReason(err error) string {
	var de *workpool.DropError
	if errors.As(err, &de) {
		return de.Reason.String()
	}
	return err.Error()
}

// printSummary writes the final statistics, one key=value line each for the
// pool and for the drops, so they read well and parse easily.
func printSummary(w io.Writer, s workpool.Stats, drops map[string]int) {
	sent := s.Completed - s.Failed
	fmt.Fprintf(w, "final stats: workers=%d queue_capacity=%d submitted=%d rejected=%d completed=%d sent=%d failed=%d panicked=%d dropped=%d queued=%d active=%d\n",
		s.Workers, s.QueueCapacity, s.Submitted, s.Rejected, s.Completed, sent, s.Failed, s.Panicked, s.Dropped, s.Queued, s.Active)
	var reasons []string
	for _, r := range slices.Sorted(maps.Keys(drops)) {
		reasons = append(reasons, fmt.Sprintf("%s=%d", r, drops[r]))
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "none")
	}
	fmt.Fprintf(w, "dropped after acceptance, by reason: %s\n", strings.Join(reasons, " "))
	if s.Active > 0 {
		// Shutdown gave up on them: their contexts are cancelled, but a sender
		// that ignores its context may still deliver.
		fmt.Fprintf(w, "still sending when shutdown gave up (outcome unknown): %d\n", s.Active)
	}
}
