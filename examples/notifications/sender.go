package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"
)

// Notification is the pool's job: one message to one user on one channel.
type Notification struct {
	ID      uint64 `json:"id"`
	User    string `json:"user"`
	Channel string `json:"channel"`
	Message string `json:"message"`
}

// Sender delivers a notification. Send must honour ctx, which carries the
// pool's per-job timeout and is cancelled if shutdown runs out of time.
type Sender interface {
	Send(ctx context.Context, n Notification) error
}

// What a provider fails with. errProvider is transient (an HTTP 503: try
// again later); errInvalidRecipient is not (a 400: the address is wrong,
// and will be wrong next time too).
var (
	errProvider         = errors.New("provider unavailable (503)")
	errInvalidRecipient = errors.New("provider rejected the recipient (400)")
)

// simulatedSender stands in for an email, SMS or push provider: each send
// takes between half and one and a half times latency, and fails or panics
// at the given rates. It rejects a share invalidRate of the recipients
// (user and channel), always the same ones. Its randomness comes from one
// seeded source, so the sequence of outcomes is the same for the same seed.
type simulatedSender struct {
	latency     time.Duration
	failRate    float64
	panicRate   float64
	invalidRate float64
	seed        uint64

	mu  sync.Mutex
	rng *rand.Rand // guarded by mu
}

func newSimulatedSender(seed uint64, latency time.Duration, failRate, panicRate, invalidRate float64) *simulatedSender {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &simulatedSender{
		latency:     latency,
		failRate:    failRate,
		panicRate:   panicRate,
		invalidRate: invalidRate,
		seed:        seed,
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Send waits the simulated latency (or until ctx ends), then rejects the
// recipient, succeeds, fails or panics.
func (s *simulatedSender) Send(ctx context.Context, n Notification) error {
	jitter, outcome := s.draw()
	if d := time.Duration(float64(s.latency) * (0.5 + jitter)); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("sending %d to %s: %w", n.ID, n.User, ctx.Err())
		}
	}
	switch {
	case s.invalid(n):
		return fmt.Errorf("sending %d to %s by %s: %w", n.ID, n.User, n.Channel, errInvalidRecipient)
	case outcome < s.panicRate:
		// A bug in a client library: the pool recovers it, counts it and
		// reports it to OnError with the stack.
		panic(fmt.Sprintf("simulated %s client crashed on notification %d", n.Channel, n.ID))
	case outcome < s.panicRate+s.failRate:
		return fmt.Errorf("sending %d to %s by %s: %w", n.ID, n.User, n.Channel, errProvider)
	}
	return nil
}

// invalid reports whether the provider rejects n's recipient: for a share
// invalidRate of the (user, channel) pairs, chosen by a hash with the seed.
func (s *simulatedSender) invalid(n Notification) bool {
	if s.invalidRate <= 0 {
		return false
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s", s.seed, n.User, n.Channel)
	return float64(h.Sum64()>>11)/(1<<53) < s.invalidRate
}

// draw takes the two random numbers one send needs, together, so each send
// consumes the same amount of the sequence whatever the interleaving.
func (s *simulatedSender) draw() (jitter, outcome float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64(), s.rng.Float64()
}
