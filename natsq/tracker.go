package natsq

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// job is one fetched message on its way through the pool: the pool's job
// type. Its links and state are guarded by the tracker's mu.
type job struct {
	msg jetstream.Msg

	prev, next *job     // in the tracker's list while held
	state      jobState // guarded by tracker.mu
	beatAt     time.Time
}

type jobState uint8

const (
	jobQueued  jobState = iota // submitted, handler not started
	jobRunning                 // handler started
	jobSettled                 // acked, naked or termed, or about to be: no longer held
)

// tracker holds the messages a consumer has fetched and not yet settled.
// It bounds them by the pool's capacity, lets shutdown hand back the ones
// not started, and lets the heartbeat reach every held message. Every
// message is settled exactly once: whoever moves it to jobSettled (under mu)
// sends its Ack, Nak or Term.
type tracker struct {
	capacity int
	batch    int           // the fetch loop waits for this much room; 1 <= batch <= capacity
	room     chan struct{} // cap 1: a message was settled while the fetch loop waits for room

	mu       sync.Mutex
	head     job  // guarded by mu; sentinel of the circular list of held jobs
	held     int  // guarded by mu; jobs in the list
	stopping bool // guarded by mu; no job may be added once set
}

func newTracker(capacity, batch int) *tracker {
	t := &tracker{capacity: capacity, batch: max(1, min(batch, capacity)), room: make(chan struct{}, 1)}
	t.head.prev, t.head.next = &t.head, &t.head
	return t
}

// add holds j as queued. It returns false, holding nothing, once stopping.
func (t *tracker) add(j *job, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return false
	}
	j.state, j.beatAt = jobQueued, now
	j.prev, j.next = t.head.prev, &t.head
	t.head.prev.next = j
	t.head.prev = j
	t.held++
	return true
}

// start marks j running. It returns false if j was already settled (handed
// back at shutdown): its handler must not run.
func (t *tracker) start(j *job) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if j.state != jobQueued {
		return false
	}
	j.state = jobRunning
	return true
}

// settle releases j and reports whether the caller won the right to send
// its Ack, Nak or Term (false: someone else settled it first).
func (t *tracker) settle(j *job) bool {
	t.mu.Lock()
	if j.state == jobSettled {
		t.mu.Unlock()
		return false
	}
	t.unlinkLocked(j)
	t.mu.Unlock()
	select {
	case t.room <- struct{}{}:
	default: // a wake-up is already pending
	}
	return true
}

func (t *tracker) unlinkLocked(j *job) {
	j.state = jobSettled
	j.prev.next = j.next
	j.next.prev = j.prev
	j.prev, j.next = nil, nil
	t.held--
}

// free waits until at least batch more messages may be held and returns how
// many, or returns 0 once stopping or when done is closed.
func (t *tracker) free(done <-chan struct{}) int {
	for {
		t.mu.Lock()
		n, stopping := t.capacity-t.held, t.stopping
		t.mu.Unlock()
		if stopping {
			return 0
		}
		if n >= t.batch {
			return n
		}
		select {
		case <-t.room:
		case <-done:
			return 0
		}
	}
}

// stop forbids adding jobs and settles every held job in one of the given
// states, returning them; the caller sends their Naks.
func (t *tracker) stop(states ...jobState) []*job {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopping = true
	var out []*job
	for j := t.head.next; j != &t.head; {
		next := j.next
		for _, s := range states {
			if j.state == s {
				t.unlinkLocked(j)
				out = append(out, j)
				break
			}
		}
		j = next
	}
	return out
}

// beat calls fn, under mu, for every held job last reported alive at or
// before cutoff, and records now as its last report. Holding mu keeps a job
// from being settled, and so from seeing a late InProgress after its Ack.
func (t *tracker) beat(cutoff, now time.Time, fn func(*job)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for j := t.head.next; j != &t.head; j = j.next {
		if !j.beatAt.After(cutoff) {
			j.beatAt = now
			fn(j)
		}
	}
}

// len returns the number of held jobs.
func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held
}
