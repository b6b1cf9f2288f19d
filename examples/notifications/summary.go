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

// channelStats is one channel's pool's statistics, with the failures the
// pool did not retry because the recipient was rejected.
type channelStats struct {
	name string
	workpool.Stats
	permanent uint64
}

// total adds up the channels' statistics.
func total(chans []channelStats) channelStats {
	t := channelStats{name: "all"}
	for _, c := range chans {
		s := c.Stats
		t.Workers += s.Workers
		t.Active += s.Active
		t.Queued += s.Queued
		t.QueueCapacity += s.QueueCapacity
		t.Submitted += s.Submitted
		t.Rejected += s.Rejected
		t.Completed += s.Completed
		t.Failed += s.Failed
		t.Panicked += s.Panicked
		t.Dropped += s.Dropped
		t.Retrying += s.Retrying
		t.Retries += s.Retries
		t.permanent += c.permanent
	}
	return t
}

// line formats c as key=value pairs. Failed counts every notification that
// failed for good: it was rejected (permanent), panicked, or failed on its
// last attempt.
func (c channelStats) line() string {
	s := c.Stats
	return fmt.Sprintf("workers=%d queue_capacity=%d submitted=%d rejected=%d completed=%d sent=%d failed=%d permanent=%d panicked=%d dropped=%d queued=%d active=%d retrying=%d retries=%d",
		s.Workers, s.QueueCapacity, s.Submitted, s.Rejected, s.Completed, s.Completed-s.Failed, s.Failed, c.permanent,
		s.Panicked, s.Dropped, s.Queued, s.Active, s.Retrying, s.Retries)
}

// printSummary writes the final statistics, one key=value line for all
// channels and one per channel, then the accounting of every accepted
// notification and the drops by reason, so they read well and parse easily.
func printSummary(w io.Writer, chans []channelStats, drops map[string]int) {
	t := total(chans)
	fmt.Fprintf(w, "final stats: %s\n", t.line())
	for _, c := range chans {
		fmt.Fprintf(w, "final stats %s: %s\n", c.name, c.line())
	}
	// Each accepted notification is counted once, however many attempts it
	// took: it was sent, failed for good or dropped, or is still somewhere
	// in a pool. A retry is not a new notification.
	s := t.Stats
	inPools := uint64(s.Queued + s.Retrying + s.Active) // not sent nor given up yet
	verdict := "ok"
	switch {
	case s.Submitted == s.Completed+s.Dropped+inPools:
	case s.Active > 0:
		// The fields are read one by one while abandoned sends may still
		// be returning.
		verdict = "approximate: sends were still returning"
	default:
		verdict = "MISMATCH"
	}
	fmt.Fprintf(w, "accepted once each: submitted %d = sent %d + failed %d + dropped %d + still in the pools %d: %s\n",
		s.Submitted, s.Completed-s.Failed, s.Failed, s.Dropped, inPools, verdict)
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
