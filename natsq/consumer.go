package natsq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/workpool-go/workpool"
)

// Message is what a [Handler] receives: the decoded value and where it came
// from.
type Message[T any] struct {
	Value     T
	Attempt   int         // 1 on the first delivery, 2 on the first redelivery, ... (restarts at 1 for deliveries the server had not persisted when it crashed)
	Subject   string      // the subject it was published on
	Header    nats.Header // the headers it was published with; do not modify
	Sequence  uint64      // its sequence number in the stream
	Published time.Time   // when the stream stored it
}

// Handler processes one message. Return nil to acknowledge it, an error to
// have it redelivered after a backoff, or an error wrapped by [Permanent] to
// terminate it. JetStream delivers at least once: a handler may see the same
// message again (after a crash, a lost ack or a timeout) and should be
// idempotent.
type Handler[T any] func(ctx context.Context, msg Message[T]) error

// Consumer runs a [workpool.Pool] fed from a durable JetStream pull
// consumer. Create one with [NewConsumer] and call [Consumer.Run] once. Any
// number of Consumers, in one process or many, may share the same durable
// consumer: the server spreads messages among them.
//
// A Consumer holds at most its pool's capacity (workers plus queue size) of
// messages at once: it fetches only as many as the pool has room for, and a
// message is held from its fetch until it is acked, naked or termed. Held
// messages, queued or running, are reported in progress every heartbeat, so
// the server does not hand them to another replica however long they take.
// The server caps the fleet at the consumer's MaxAckPending.
//
// Its methods are safe for concurrent use.
type Consumer[T any] struct {
	js      jetstream.JetStream
	cons    jetstream.Consumer
	handler Handler[T]
	codec   Codec[T]
	pool    *workpool.Pool[*job]
	t       *tracker
	c       counters
	log     *slog.Logger // nil: no logging

	backoff      func(attempt int) time.Duration
	ackWait      time.Duration
	heartbeat    time.Duration
	fetchTimeout time.Duration
	maxDeliver   int // the consumer's MaxDeliver; <= 0: unlimited
	deadLetter   string

	ran atomic.Bool
}

// NewConsumer returns a consumer that runs handler on the messages of cons,
// a durable pull consumer with explicit acks (see [Setup]). js is the
// JetStream context cons was obtained from; the consumer uses it for
// dead-letter publishes and to flush acknowledgements at shutdown. It reads
// AckWait and MaxDeliver from cons's cached info, validates every setting and
// creates the pool; nothing runs until [Consumer.Run].
func NewConsumer[T any](js jetstream.JetStream, cons jetstream.Consumer, handler Handler[T], opts ...ConsumerOption) (*Consumer[T], error) {
	if js == nil || cons == nil || handler == nil {
		return nil, errors.New("natsq: NewConsumer needs a JetStream, a consumer and a handler")
	}
	s := consumerSettings{
		backoff:      ExponentialBackoff(time.Second, time.Minute),
		fetchTimeout: DefaultFetchTimeout,
		metrics:      NopMetrics{},
	}
	for _, o := range opts {
		if o != nil {
			o.applyConsumer(&s)
		}
	}
	info := cons.CachedInfo()
	if info == nil {
		return nil, errors.New("natsq: consumer has no cached info")
	}
	c := &Consumer[T]{
		js: js, cons: cons, handler: handler, log: s.log,
		backoff:      s.backoff,
		ackWait:      info.Config.AckWait,
		heartbeat:    s.heartbeat,
		fetchTimeout: s.fetchTimeout,
		maxDeliver:   info.Config.MaxDeliver,
		deadLetter:   s.deadLetter,
	}
	if c.ackWait <= 0 {
		c.ackWait = 30 * time.Second // the server's default
	}
	if c.heartbeat == 0 {
		c.heartbeat = c.ackWait / 3
	}
	codec, err := codecFor[T](s.codec)
	var errs []error
	errs = append(errs, err)
	c.codec = codec
	if info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		errs = append(errs, fmt.Errorf("natsq: consumer %q must use explicit acks, has %v", info.Name, info.Config.AckPolicy))
	}
	if c.heartbeat <= 0 || c.heartbeat >= c.ackWait {
		errs = append(errs, fmt.Errorf("natsq: heartbeat must be positive and less than AckWait %v, got %v", c.ackWait, c.heartbeat))
	}
	if c.fetchTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("natsq: fetch timeout must be at least 10ms, got %v", c.fetchTimeout))
	}
	if s.backoff == nil {
		errs = append(errs, errors.New("natsq: backoff is nil"))
	}
	if s.metrics == nil {
		errs = append(errs, errors.New("natsq: metrics is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.c.m = s.metrics

	poolOpts := append([]workpool.Option{workpool.WithQueueSize(DefaultQueueSize)}, s.poolOpts...)
	poolOpts = append(poolOpts, workpool.OnDrop(c.dropped))
	c.pool, err = workpool.New(c.handle, poolOpts...)
	if err != nil {
		return nil, err
	}
	ps := c.pool.Stats()
	// Fetch once a queue's worth of room is free: every worker may still be
	// busy, so the round trip overlaps their work, and each request asks for
	// many messages rather than one per finished job.
	c.t = newTracker(ps.Workers+ps.QueueCapacity, ps.QueueCapacity)
	if b, ok := s.metrics.(StatsBinder); ok {
		if err := b.Bind(c.Stats); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run starts the pool and feeds it until ctx ends, then shuts down and
// returns. It returns [ErrRunTwice] if called again.
//
// When ctx ends, Run stops fetching, at once naks every held message whose
// handler has not started (so the server redelivers it elsewhere without
// waiting for AckWait), waits for the fetch in progress to end (at most the
// fetch timeout; messages it still brings are naked too), and shuts the pool
// down, which lets running handlers finish with live contexts. It returns nil
// once every message it fetched was acked, naked or termed and those
// acknowledgements were flushed to the server.
//
// The drain is bounded by the pool's shutdown timeout
// ([workpool.WithShutdownTimeout], 30s by default). Past it the pool cancels
// running handlers' contexts; Run naks the messages they still hold and
// returns the pool's error (context.DeadlineExceeded). A handler that
// ignores its context may still be running then; its later result is
// discarded.
//
// Fetch errors (a lost connection, a server restart) do not end Run: it
// counts them and retries with a backoff while ctx lasts.
func (c *Consumer[T]) Run(ctx context.Context) error {
	if ctx == nil {
		return errors.New("natsq: nil context")
	}
	if !c.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	c.pool.Start()
	stopBeat, beatDone := make(chan struct{}), make(chan struct{})
	go c.heartbeats(stopBeat, beatDone)

	// Hand back unstarted messages as soon as ctx ends, while the fetch loop
	// may still be waiting for its last fetch.
	handedBack := make(chan struct{})
	stopHandBack := context.AfterFunc(ctx, func() {
		defer close(handedBack)
		c.handBack(c.t.stop(jobQueued))
	})
	c.fetchLoop(ctx)
	if stopHandBack() {
		c.handBack(c.t.stop(jobQueued)) // ctx ended but the callback had not started
	} else {
		<-handedBack
	}

	err := c.pool.Shutdown(context.Background())
	if err != nil {
		// Past the shutdown deadline: nak what running handlers still hold.
		c.handBack(c.t.stop(jobQueued, jobRunning))
	}
	close(stopBeat)
	<-beatDone
	if nc := c.js.Conn(); nc != nil && !nc.IsClosed() {
		if ferr := nc.FlushTimeout(5 * time.Second); ferr != nil {
			c.logWarn("natsq: flushing acknowledgements at shutdown", "err", ferr)
		}
	}
	return err
}

// Stats returns a snapshot of the consumer's counters and its pool's.
func (c *Consumer[T]) Stats() Stats {
	s := Stats{InFlight: c.t.len(), Capacity: c.t.capacity}
	c.c.fill(&s)
	s.Pool = c.pool.Stats()
	return s
}

func (c *Consumer[T]) logWarn(msg string, args ...any) {
	if c.log != nil {
		c.log.Warn(msg, args...)
	}
}
