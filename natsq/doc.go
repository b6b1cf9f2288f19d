// Package natsq feeds [workpool] pools from a NATS JetStream work queue, so
// that pools on many machines share one durable queue with at-least-once
// delivery and nothing is lost when a process dies.
//
// Choose it over the pool's in-memory queue when jobs must survive a
// restart or a crash, when one machine is not enough, or when producers and
// workers live in different processes. JetStream is the engine: it stores
// the jobs, tracks acknowledgements and redelivers; natsq adds typed jobs,
// backpressure from the pool, retries with backoff, heartbeats for long
// jobs, dead-lettering, a clean shutdown and metrics.
//
// # Usage
//
//	nc, _ := nats.Connect(url)
//	js, _ := jetstream.New(nc)
//	cons, err := natsq.Setup(ctx, js, natsq.QueueConfig{
//		Stream: "EMAILS", Subjects: []string{"emails.>"}, Consumer: "senders",
//		AckWait: 30 * time.Second, MaxDeliver: 5,
//	})
//
//	// Producer side:
//	p, _ := natsq.NewProducer[Email](js, "emails.welcome")
//	_, err = p.Enqueue(ctx, "welcome-"+userID, Email{To: addr})
//
//	// Worker side, on every replica:
//	c, _ := natsq.NewConsumer(js, cons, func(ctx context.Context, m natsq.Message[Email]) error {
//		return send(ctx, m.Value) // nil: ack; error: retry later; natsq.Permanent(err): give up
//	}, natsq.WithPoolOptions(workpool.WithWorkers(8)))
//	err = c.Run(ctx) // until ctx ends; then drains and returns
//
// # Delivery guarantees
//
// Delivery is at least once. A message is acknowledged only after its
// handler returned nil; a crash, a lost connection or a handler error leads
// to redelivery, so a handler may see a message more than once and should be
// idempotent. [Producer.Enqueue] sets a message ID, which the stream uses to
// drop a repeated publish within its duplicate window: retrying a publish
// whose outcome is unknown does not create a second job.
//
// Per message, [Consumer] sends exactly one of: Ack when the handler returns
// nil; NakWithDelay with the backoff for the attempt when it returns an
// error (or panics); Term when the error is marked by [Permanent], when the
// payload cannot be decoded, or when the last allowed delivery (MaxDeliver)
// fails, after republishing the message to a dead-letter subject if one is
// set ([WithDeadLetter]).
//
// # Backpressure and heartbeats
//
// A consumer never holds more messages than its pool can take (workers plus
// queue size): each fetch asks for at most the free room, and messages are
// submitted with [workpool.Pool.SubmitWait], so none is refused. Across the
// fleet the server caps unacknowledged messages at MaxAckPending. While a
// message is held, queued or running, the consumer reports it in progress
// every third of AckWait, so the server does not give a long job to a second
// replica while the first still works on it.
//
// # Shutdown
//
// When Run's context ends it stops fetching, naks at once every message
// whose handler has not started (another replica gets it without waiting for
// AckWait), waits for running handlers within the pool's shutdown timeout,
// and returns after every message it fetched was acked, naked or termed.
//
// # Metrics
//
// [Consumer.Stats] returns the counters and the pool's [workpool.Stats].
// [WithMetrics] sends events to a [Metrics]; [NewPrometheusMetrics] is an
// adapter registered on a Registerer of your choice.
//
// All exported methods are safe for concurrent use. The sub-package
// natsq/embedded runs JetStream servers inside the process, one or a
// cluster, for tests and single-machine setups.
package natsq
