package natsq

// Metrics receives a consumer's events. It is the seam to a metrics backend;
// [NewPrometheusMetrics] is one. Together with the pool's own
// [workpool.Metrics] it lets one dashboard show the queue and the pool.
//
// The methods are called on the hot path, from the fetch loop and every
// worker at once: implementations must be safe for concurrent use, must not
// block and should not allocate.
type Metrics interface {
	// Fetched is called once for each message received from the server.
	Fetched()
	// Redelivered is called for each message whose handler starts on a
	// redelivery (attempt number above 1).
	Redelivered()
	// Acked is called for each message acknowledged after its handler
	// succeeded.
	Acked()
	// Naked is called for each message handed back for redelivery, with why.
	Naked(reason NakReason)
	// Termed is called for each message terminated, with why.
	Termed(reason TermReason)
	// DeadLettered is called for each message republished to the
	// dead-letter subject.
	DeadLettered()
	// Heartbeat is called for each InProgress sent for a held message.
	Heartbeat()
	// AckFailed is called when an Ack, Nak, Term or InProgress could not be
	// sent (the connection is closed, for instance). The server redelivers
	// such a message after AckWait.
	AckFailed()
	// FetchFailed is called when a fetch request fails; the consumer retries
	// with a backoff.
	FetchFailed()
}

// A StatsBinder is a [Metrics] that also reads the consumer's state, such as
// a collector that reports messages in flight at scrape time. [NewConsumer]
// calls Bind once with the consumer's [Consumer.Stats] method; an error
// makes NewConsumer fail.
type StatsBinder interface {
	Bind(stats func() Stats) error
}

// NakReason says why a message was handed back for redelivery. Its String
// form is the label value used by the Prometheus adapter.
type NakReason uint8

const (
	// NakError: the handler returned an error (or panicked); the message is
	// redelivered after the backoff for its attempt.
	NakError NakReason = iota
	// NakShutdown: the consumer stopped before the message's handler started
	// (or, past the pool's shutdown deadline, finished); the message is
	// redelivered at once.
	NakShutdown
	// NakDeadLetterFailed: the message was to be terminated but the
	// dead-letter publish failed, so it was kept.
	NakDeadLetterFailed
	numNakReasons
)

var nakNames = [numNakReasons]string{"error", "shutdown", "dead_letter_failed"}

// String returns the reason's label value, such as "error".
func (r NakReason) String() string {
	if r < numNakReasons {
		return nakNames[r]
	}
	return "unknown"
}

// TermReason says why a message was terminated. Its String form is the
// label value used by the Prometheus adapter and the Natsq-Reason header.
type TermReason uint8

const (
	// TermPermanent: the handler returned an error marked by [Permanent].
	TermPermanent TermReason = iota
	// TermUndecodable: the codec could not decode the payload.
	TermUndecodable
	// TermMaxDeliver: the handler failed on the consumer's last allowed
	// delivery (MaxDeliver).
	TermMaxDeliver
	numTermReasons
)

var termNames = [numTermReasons]string{"permanent", "undecodable", "max_deliver"}

// String returns the reason's label value, such as "max_deliver".
func (r TermReason) String() string {
	if r < numTermReasons {
		return termNames[r]
	}
	return "unknown"
}

// NopMetrics is the default [Metrics]: it ignores every event.
type NopMetrics struct{}

func (NopMetrics) Fetched()          {}
func (NopMetrics) Redelivered()      {}
func (NopMetrics) Acked()            {}
func (NopMetrics) Naked(NakReason)   {}
func (NopMetrics) Termed(TermReason) {}
func (NopMetrics) DeadLettered()     {}
func (NopMetrics) Heartbeat()        {}
func (NopMetrics) AckFailed()        {}
func (NopMetrics) FetchFailed()      {}

var _ Metrics = NopMetrics{}
