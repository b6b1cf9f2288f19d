package natsq

import (
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/workpool-go/workpool"
)

// Defaults used by [NewConsumer] for every setting no option changes.
const (
	// DefaultFetchTimeout is how long one fetch request waits for messages.
	// It also bounds how long Run takes to stop fetching at shutdown.
	DefaultFetchTimeout = time.Second
	// DefaultQueueSize is the pool queue size natsq sets before the caller's
	// pool options: each queued message is one the rest of the fleet cannot
	// have, so natsq holds few (the core's default is 1000).
	DefaultQueueSize = workpool.DefaultWorkers
	// DefaultDeadLetterTimeout bounds one dead-letter publish.
	DefaultDeadLetterTimeout = 5 * time.Second
)

// A ProducerOption configures [NewProducer].
type ProducerOption interface{ applyProducer(*producerSettings) }

// A ConsumerOption configures [NewConsumer].
type ConsumerOption interface{ applyConsumer(*consumerSettings) }

// An Option configures both [NewProducer] and [NewConsumer].
type Option interface {
	ProducerOption
	ConsumerOption
}

type producerSettings struct {
	codec any // Codec[T] for the producer's T; checked by NewProducer
	log   *slog.Logger
}

type consumerSettings struct {
	codec        any // Codec[T] for the consumer's T; checked by NewConsumer
	log          *slog.Logger
	poolOpts     []workpool.Option
	backoff      func(attempt int) time.Duration
	heartbeat    time.Duration // 0: AckWait/3
	fetchTimeout time.Duration
	deadLetter   string
	metrics      Metrics
}

type consumerOption func(*consumerSettings)

func (f consumerOption) applyConsumer(s *consumerSettings) { f(s) }

type bothOption struct {
	producer func(*producerSettings)
	consumer func(*consumerSettings)
}

func (o bothOption) applyProducer(s *producerSettings) { o.producer(s) }
func (o bothOption) applyConsumer(s *consumerSettings) { o.consumer(s) }

// WithCodec sets how job values are encoded in message payloads. Default
// [JSON]. The codec's type must match the producer's or consumer's job type:
// the constructor returns an error otherwise.
func WithCodec[T any](c Codec[T]) Option {
	return bothOption{
		producer: func(s *producerSettings) { s.codec = c },
		consumer: func(s *consumerSettings) { s.codec = c },
	}
}

// WithLogger sets a structured logger for fetch errors, failed
// acknowledgements and dead-lettering. Default: no logging.
func WithLogger(l *slog.Logger) Option {
	return bothOption{
		producer: func(s *producerSettings) { s.log = l },
		consumer: func(s *consumerSettings) { s.log = l },
	}
}

// WithPoolOptions configures the consumer's [workpool.Pool]: workers, queue
// size, per-job timeout, shutdown timeout, pool metrics and logger. natsq
// applies [workpool.WithQueueSize]([DefaultQueueSize]) before them and its
// own OnDrop hook after them, so an OnDrop given here is replaced. The
// pool's capacity (workers plus queue size) is the most messages the
// consumer holds at once.
func WithPoolOptions(opts ...workpool.Option) ConsumerOption {
	return consumerOption(func(s *consumerSettings) { s.poolOpts = append(s.poolOpts, opts...) })
}

// WithBackoff sets the redelivery delay asked for (NakWithDelay) after a
// handler error on the given attempt (1 for the first delivery). Default
// [ExponentialBackoff](time.Second, time.Minute).
func WithBackoff(fn func(attempt int) time.Duration) ConsumerOption {
	return consumerOption(func(s *consumerSettings) { s.backoff = fn })
}

// WithHeartbeat sets how often a held message is reported in progress
// (InProgress) so the server does not redeliver it while it waits in the
// queue or its handler runs. Default: a third of the consumer's AckWait.
// It must be positive and less than AckWait.
func WithHeartbeat(d time.Duration) ConsumerOption {
	return consumerOption(func(s *consumerSettings) { s.heartbeat = d })
}

// WithFetchTimeout sets how long one fetch request waits for messages.
// Default [DefaultFetchTimeout]. Shutdown waits for the fetch in progress to
// end rather than abandon messages the server may already have sent, so this
// also bounds how long Run takes to stop fetching. Must be at least 10ms.
func WithFetchTimeout(d time.Duration) ConsumerOption {
	return consumerOption(func(s *consumerSettings) { s.fetchTimeout = d })
}

// WithDeadLetter republishes every terminated message (permanent error,
// undecodable payload, or MaxDeliver reached) to subject before terminating
// it, with its payload and headers and these added headers: Natsq-Reason
// (permanent, undecodable, max_deliver), Natsq-Error, Natsq-Subject,
// Natsq-Stream, Natsq-Sequence and Natsq-Attempts. The subject must be bound
// to a stream: the publish waits for its acknowledgement, and if it fails the
// message is not terminated but naked, so it is not lost. Default: no
// dead-letter subject.
func WithDeadLetter(subject string) ConsumerOption {
	return consumerOption(func(s *consumerSettings) { s.deadLetter = subject })
}

// WithMetrics sets the receiver of the consumer's events. Default
// [NopMetrics]; nil is an error.
func WithMetrics(m Metrics) ConsumerOption {
	return consumerOption(func(s *consumerSettings) { s.metrics = m })
}

// ExponentialBackoff returns a backoff that waits base on the first attempt
// and doubles on each later one, up to limit.
func ExponentialBackoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	}
}

// codecFor checks a codec option against the job type T.
func codecFor[T any](c any) (Codec[T], error) {
	switch c := c.(type) {
	case nil:
		return JSON[T]{}, nil
	case Codec[T]:
		return c, nil
	default:
		return nil, fmt.Errorf("natsq: codec %T does not encode %v", c, reflect.TypeFor[T]())
	}
}
