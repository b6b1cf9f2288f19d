package natsq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// QueueConfig describes a work queue: a stream with work-queue retention (a
// message is deleted once acked or terminated) and one durable pull consumer
// shared by every replica. Zero fields take the documented defaults.
type QueueConfig struct {
	Stream   string   // stream name; required
	Subjects []string // subjects the stream captures; required
	Consumer string   // durable consumer name; required

	// AckWait is how long the server waits for an acknowledgement before it
	// redelivers; held messages are kept alive by heartbeats. Default 30s.
	AckWait time.Duration
	// MaxDeliver is how many times a message is delivered at most; the
	// consumer terminates a message that fails on its last delivery. Default
	// 5; -1 for no limit.
	MaxDeliver int
	// MaxAckPending caps the messages delivered and not yet acknowledged
	// across all replicas. Default 1000.
	MaxAckPending int
	// Duplicates is the window in which a repeated message ID is dropped.
	// Default 2 minutes.
	Duplicates time.Duration
	// Storage is FileStorage (the default, survives restarts) or
	// MemoryStorage.
	Storage jetstream.StorageType
	// Replicas is the number of stream replicas in a cluster. Default 1.
	Replicas int
}

// Setup creates the stream and durable consumer described by cfg, or updates
// them to match it, and returns the consumer. It is safe to call from every
// replica at start-up. Updating fails if an existing stream has another
// retention policy, which JetStream cannot change.
//
// A cluster that has just formed, or has just lost a server, may refuse to
// place the stream or the consumer for a moment: "no suitable peers for
// placement, peer offline" (error 10005) or "JetStream system temporarily
// unavailable" (10008). Setup retries those, with backoff, for up to 10
// seconds or until ctx ends, and then returns the last error. Other errors,
// among them a placement that can never succeed (more replicas than
// servers), return at once.
func Setup(ctx context.Context, js jetstream.JetStream, cfg QueueConfig) (jetstream.Consumer, error) {
	if cfg.Stream == "" || cfg.Consumer == "" || len(cfg.Subjects) == 0 {
		return nil, errors.New("natsq: QueueConfig needs Stream, Subjects and Consumer")
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 5
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 1000
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	stream, err := retryPlacement(ctx, func() (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:       cfg.Stream,
			Subjects:   cfg.Subjects,
			Retention:  jetstream.WorkQueuePolicy,
			Storage:    cfg.Storage,
			Replicas:   cfg.Replicas,
			Duplicates: cfg.Duplicates,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("natsq: stream %q: %w", cfg.Stream, err)
	}
	cons, err := retryPlacement(ctx, func() (jetstream.Consumer, error) {
		return stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       cfg.Consumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    cfg.MaxDeliver,
			MaxAckPending: cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			Replicas:      cfg.Replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("natsq: consumer %q on stream %q: %w", cfg.Consumer, cfg.Stream, err)
	}
	return cons, nil
}

// placementRetryFor bounds how long Setup retries a transient placement
// error (a variable for the tests).
var placementRetryFor = 10 * time.Second

// JetStream's error codes for a cluster that cannot place an asset yet.
const (
	errCodeNoPeers     jetstream.ErrorCode = 10005 // no suitable peers for placement
	errCodeUnavailable jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
)

// transientPlacement reports whether err is a refusal that a forming or
// recovering cluster gives for a moment. Error 10005 is also what a
// placement that can never succeed gets; only its "peer offline" form
// passes when the peer comes back.
func transientPlacement(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeUnavailable:
		return true
	case errCodeNoPeers:
		return strings.Contains(apiErr.Description, "peer offline")
	}
	return false
}

// retryPlacement calls create until it succeeds, fails with an error that
// is not a transient placement error, ctx ends or placementRetryFor has
// passed; it returns create's last result.
func retryPlacement[T any](ctx context.Context, create func() (T, error)) (T, error) {
	deadline := time.Now().Add(placementRetryFor)
	wait := 50 * time.Millisecond
	for {
		v, err := create()
		if err == nil || !transientPlacement(err) || time.Now().Add(wait).After(deadline) {
			return v, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}
