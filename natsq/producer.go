package natsq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Producer enqueues jobs of type T on a subject, encoded by its codec. Every
// message carries a message ID, so the stream drops a repeat published
// within its duplicate window: a producer may retry a publish whose outcome
// it does not know without creating a second job. Create one with
// [NewProducer]; its methods are safe for concurrent use.
type Producer[T any] struct {
	js      jetstream.JetStream
	subject string
	codec   Codec[T]
	log     *slog.Logger
}

// Item is one job for [Producer.EnqueueAll].
type Item[T any] struct {
	ID     string      // message ID for duplicate detection; "" for a random one
	Value  T           // the job
	Header nats.Header // optional headers
}

// NewProducer returns a producer that publishes on subject through js.
func NewProducer[T any](js jetstream.JetStream, subject string, opts ...ProducerOption) (*Producer[T], error) {
	if js == nil || subject == "" {
		return nil, errors.New("natsq: NewProducer needs a JetStream and a subject")
	}
	var s producerSettings
	for _, o := range opts {
		if o != nil {
			o.applyProducer(&s)
		}
	}
	codec, err := codecFor[T](s.codec)
	if err != nil {
		return nil, err
	}
	return &Producer[T]{js: js, subject: subject, codec: codec, log: s.log}, nil
}

// Enqueue publishes v with message ID id and waits for the stream's
// acknowledgement. An empty id gets a random one, which dedupes only this
// call's own retries; give a stable ID (an order number, an idempotency key)
// to dedupe the caller's retries too.
//
// A publish that gets no answer (no responders while the server restarts, a
// timeout, a reconnect) is retried with the same ID until it is acknowledged
// or ctx ends; ctx's error is then returned, joined with the last publish
// error. PubAck.Duplicate is true when the stream already had the ID.
func (p *Producer[T]) Enqueue(ctx context.Context, id string, v T) (*jetstream.PubAck, error) {
	msg, err := p.message(Item[T]{ID: id, Value: v})
	if err != nil {
		return nil, err
	}
	return p.publish(ctx, msg)
}

// EnqueueAll publishes items asynchronously and waits until every one is
// acknowledged by the stream. When the client's limit on outstanding
// asynchronous publishes is reached it waits for earlier ones to be
// acknowledged instead of failing, and an item whose publish fails is
// retried synchronously with its ID. It returns nil when every item is
// stored; otherwise an error naming each item that is not known to be, and
// the caller may call EnqueueAll again with the same items: items with
// stable IDs that were stored are dropped as duplicates.
func (p *Producer[T]) EnqueueAll(ctx context.Context, items []Item[T]) error {
	msgs := make([]*nats.Msg, len(items))
	futs := make([]jetstream.PubAckFuture, len(items))
	errs := make([]error, len(items))
	answered := make([]bool, len(items)) // futs[i]'s answer was taken into errs[i]
	oldest := 0                          // every future before it has been answered
	for i := range items {
		msg, err := p.message(items[i])
		if err != nil {
			errs[i] = err
			continue
		}
		msgs[i] = msg
		for {
			f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(msg.Header.Get(jetstream.MsgIDHeader)))
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				futs[i], errs[i] = f, err
				break
			}
			// At the client's cap of outstanding publishes: wait for our
			// oldest one to be answered, then try again.
			for oldest < i && (futs[oldest] == nil || answered[oldest]) {
				oldest++
			}
			if oldest == i {
				// None of ours is outstanding: another producer on this
				// JetStream context holds the slots.
				if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
					return p.batchError(items, errs, err, i)
				}
				continue
			}
			errs[oldest], answered[oldest] = p.await(ctx, futs[oldest]), true
			if ctx.Err() != nil {
				return p.batchError(items, errs, ctx.Err(), i)
			}
		}
	}
	for i, f := range futs {
		if f != nil && !answered[i] {
			errs[i] = p.await(ctx, f)
		}
		if errs[i] != nil && msgs[i] != nil && ctx.Err() == nil {
			// Same message ID: if the first try was stored, this is a duplicate.
			_, errs[i] = p.publish(ctx, msgs[i])
		}
	}
	return p.batchError(items, errs, nil, len(items))
}

// await waits for one asynchronous publish's acknowledgement.
func (p *Producer[T]) await(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batchError reports the items not known to be stored: those with an error,
// and those from unsent on when ctx ended (err).
func (p *Producer[T]) batchError(items []Item[T], errs []error, err error, unsent int) error {
	var out []error
	for i, e := range errs {
		if e != nil {
			out = append(out, fmt.Errorf("item %d (ID %q): %w", i, items[i].ID, e))
		}
	}
	if unsent < len(items) {
		out = append(out, fmt.Errorf("items %d to %d not published: %w", unsent, len(items)-1, err))
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("natsq: %d of %d items not known to be stored: %w", len(out), len(items), errors.Join(out...))
}

// message encodes one item.
func (p *Producer[T]) message(it Item[T]) (*nats.Msg, error) {
	data, err := p.codec.Encode(it.Value)
	if err != nil {
		return nil, fmt.Errorf("natsq: encoding job: %w", err)
	}
	msg := nats.NewMsg(p.subject)
	msg.Data = data
	for k, v := range it.Header {
		msg.Header[k] = v
	}
	id := it.ID
	if id == "" {
		id = nuid.Next()
	}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	return msg, nil
}

// publish publishes msg and waits for its acknowledgement, retrying while no
// answer comes and ctx lasts.
func (p *Producer[T]) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	const minWait, maxWait = 50 * time.Millisecond, 2 * time.Second
	wait := minWait
	for {
		// Each attempt gets its own deadline: a request lost across a
		// reconnect would otherwise hold the whole ctx. A retry with the
		// same message ID is a duplicate if the first attempt was stored.
		actx, cancel := context.WithTimeout(ctx, publishAttemptTimeout)
		ack, err := p.js.PublishMsg(actx, msg, jetstream.WithMsgID(msg.Header.Get(jetstream.MsgIDHeader)))
		cancel()
		if err == nil {
			return ack, nil
		}
		if !transient(err) || ctx.Err() != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = errors.Join(ctx.Err(), err)
			}
			return nil, fmt.Errorf("natsq: publish on %s: %w", msg.Subject, err)
		}
		if p.log != nil {
			p.log.Warn("natsq: publish not acknowledged; retrying", "subject", msg.Subject, "err", err)
		}
		if serr := sleepCtx(ctx, wait); serr != nil {
			return nil, fmt.Errorf("natsq: publish on %s: %w", msg.Subject, errors.Join(serr, err))
		}
		wait = min(2*wait, maxWait)
	}
}

// publishAttemptTimeout bounds one publish attempt of Enqueue.
const publishAttemptTimeout = 2 * time.Second

// transient reports whether a publish error may go away by itself, so the
// publish is worth repeating with the same message ID.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
