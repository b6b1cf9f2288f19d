package natsq

import (
	"sync/atomic"

	"github.com/workpool-go/workpool"
)

// Stats is a snapshot of a consumer's state and counters, from
// [Consumer.Stats]. Each field is read separately while the consumer works.
// At rest, and when no acknowledgement failed, Fetched == Acked +
// TotalNaked() + TotalTermed() + InFlight.
type Stats struct {
	InFlight int // messages fetched and not yet acked, naked or termed
	Capacity int // the most messages held at once: the pool's workers plus queue size

	Fetched      uint64
	Redelivered  uint64 // handlers started on an attempt above 1
	Acked        uint64
	Naked        [numNakReasons]uint64  // indexed by NakReason
	Termed       [numTermReasons]uint64 // indexed by TermReason
	DeadLettered uint64
	Heartbeats   uint64
	AckFailures  uint64 // Ack, Nak, Term or InProgress not sent; the server redelivers after AckWait
	FetchErrors  uint64 // failed fetch requests, retried
	Fetches      uint64 // fetch requests sent

	Pool workpool.Stats // the consumer's pool
}

// TotalNaked returns the number of naked messages, whatever the reason.
func (s Stats) TotalNaked() uint64 {
	var n uint64
	for _, v := range s.Naked {
		n += v
	}
	return n
}

// TotalTermed returns the number of terminated messages, whatever the reason.
func (s Stats) TotalTermed() uint64 {
	var n uint64
	for _, v := range s.Termed {
		n += v
	}
	return n
}

// counters are a consumer's event counts; each event also goes to Metrics.
type counters struct {
	m            Metrics
	fetched      atomic.Uint64
	redelivered  atomic.Uint64
	acked        atomic.Uint64
	naked        [numNakReasons]atomic.Uint64
	termed       [numTermReasons]atomic.Uint64
	deadLettered atomic.Uint64
	heartbeats   atomic.Uint64
	ackFailures  atomic.Uint64
	fetchErrors  atomic.Uint64
	fetches      atomic.Uint64 // not an event: Stats only
}

func (c *counters) Fetched()            { c.fetched.Add(1); c.m.Fetched() }
func (c *counters) Redelivered()        { c.redelivered.Add(1); c.m.Redelivered() }
func (c *counters) Acked()              { c.acked.Add(1); c.m.Acked() }
func (c *counters) Naked(r NakReason)   { c.naked[r].Add(1); c.m.Naked(r) }
func (c *counters) Termed(r TermReason) { c.termed[r].Add(1); c.m.Termed(r) }
func (c *counters) DeadLettered()       { c.deadLettered.Add(1); c.m.DeadLettered() }
func (c *counters) Heartbeat()          { c.heartbeats.Add(1); c.m.Heartbeat() }
func (c *counters) AckFailed()          { c.ackFailures.Add(1); c.m.AckFailed() }
func (c *counters) FetchFailed()        { c.fetchErrors.Add(1); c.m.FetchFailed() }
func (c *counters) fill(s *Stats) {
	s.Fetched = c.fetched.Load()
	s.Redelivered = c.redelivered.Load()
	s.Acked = c.acked.Load()
	for i := range c.naked {
		s.Naked[i] = c.naked[i].Load()
	}
	for i := range c.termed {
		s.Termed[i] = c.termed[i].Load()
	}
	s.DeadLettered = c.deadLettered.Load()
	s.Heartbeats = c.heartbeats.Load()
	s.AckFailures = c.ackFailures.Load()
	s.FetchErrors = c.fetchErrors.Load()
	s.Fetches = c.fetches.Load()
}
