package natsq

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errHandlerPanicked settles a message whose handler panicked or called
// runtime.Goexit; the pool reports the panic itself.
var errHandlerPanicked = errors.New("natsq: handler panicked")

// handle is the pool's handler: it runs the user's handler on one message
// and settles the message by the result.
func (c *Consumer[T]) handle(ctx context.Context, j *job) error {
	if !c.t.start(j) {
		return nil // handed back at shutdown before it started
	}
	m := Message[T]{Attempt: 1, Subject: j.msg.Subject(), Header: j.msg.Headers()}
	if meta, err := j.msg.Metadata(); err == nil {
		m.Attempt = int(meta.NumDelivered)
		m.Sequence = meta.Sequence.Stream
		m.Published = meta.Timestamp
	}
	if m.Attempt > 1 {
		c.c.Redelivered()
	}
	v, err := c.codec.Decode(j.msg.Data())
	if err != nil {
		err = &DecodeError{Subject: m.Subject, Sequence: m.Sequence, Err: err}
		c.term(j, m, TermUndecodable, err)
		return err
	}
	m.Value = v

	returned := false
	defer func() {
		if !returned {
			// A panic or Goexit unwinds through here to the pool, which
			// recovers and reports it: settle the message on the way.
			c.retry(ctx, j, m, errHandlerPanicked)
		}
	}()
	err = c.handler(ctx, m)
	returned = true

	switch {
	case err == nil:
		if c.t.settle(j) {
			if aerr := j.msg.Ack(); aerr != nil {
				c.ackFailed("ack", aerr)
			} else {
				c.c.Acked()
			}
		}
	case IsPermanent(err):
		c.term(j, m, TermPermanent, err)
	default:
		c.retry(ctx, j, m, err)
	}
	return err
}

// retry settles a failed message: redelivery after the backoff, at once if
// the pool stopped the handler, or termination on the last allowed attempt.
func (c *Consumer[T]) retry(ctx context.Context, j *job, m Message[T], err error) {
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		c.nak(j, 0, NakShutdown) // the pool cancelled it at a hard stop
	case c.maxDeliver > 0 && m.Attempt >= c.maxDeliver:
		c.term(j, m, TermMaxDeliver, err)
	default:
		c.nak(j, c.backoff(m.Attempt), NakError)
	}
}

// nak settles j and naks it.
func (c *Consumer[T]) nak(j *job, delay time.Duration, reason NakReason) {
	if c.t.settle(j) {
		c.sendNak(j, delay, reason)
	}
}

// sendNak naks a settled j, for redelivery after delay.
func (c *Consumer[T]) sendNak(j *job, delay time.Duration, reason NakReason) {
	var err error
	if delay > 0 {
		err = j.msg.NakWithDelay(delay)
	} else {
		err = j.msg.Nak()
	}
	if err != nil {
		c.ackFailed("nak", err)
		return
	}
	c.c.Naked(reason)
}

// term terminates j, after republishing it to the dead-letter subject if one
// is set. If that publish fails, j is naked instead, so it is not lost.
func (c *Consumer[T]) term(j *job, m Message[T], reason TermReason, cause error) {
	if c.deadLetter != "" {
		// Published before settling, so the message stays held (and kept
		// alive) meanwhile; the message ID dedupes a second copy if the
		// message is redelivered and dead-lettered again.
		if err := c.publishDeadLetter(j, m, reason, cause); err != nil {
			c.logWarn("natsq: dead-letter publish failed; message naked", "subject", m.Subject,
				"sequence", m.Sequence, "err", err)
			c.nak(j, c.backoff(m.Attempt), NakDeadLetterFailed)
			return
		}
		c.c.DeadLettered()
	}
	if !c.t.settle(j) {
		return
	}
	if err := j.msg.TermWithReason(termText(reason, cause)); err != nil {
		c.ackFailed("term", err)
		return
	}
	c.c.Termed(reason)
}

func (c *Consumer[T]) publishDeadLetter(j *job, m Message[T], reason TermReason, cause error) error {
	msg := nats.NewMsg(c.deadLetter)
	msg.Data = j.msg.Data()
	for k, v := range j.msg.Headers() {
		if !strings.HasPrefix(k, "Nats-") { // JetStream's own: message ID, expectations
			msg.Header[k] = append([]string(nil), v...)
		}
	}
	msg.Header.Set("Natsq-Reason", reason.String())
	msg.Header.Set("Natsq-Error", cause.Error())
	msg.Header.Set("Natsq-Subject", m.Subject)
	msg.Header.Set("Natsq-Sequence", uitoa(m.Sequence))
	msg.Header.Set("Natsq-Attempts", uitoa(uint64(m.Attempt)))
	stream := ""
	if meta, err := j.msg.Metadata(); err == nil {
		stream = meta.Stream
	}
	msg.Header.Set("Natsq-Stream", stream)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDeadLetterTimeout)
	defer cancel()
	_, err := c.js.PublishMsg(ctx, msg, jetstream.WithMsgID("natsq-dlq:"+stream+":"+uitoa(m.Sequence)))
	return err
}

// termText is the reason sent with Term, shown in the server's advisory.
func termText(reason TermReason, cause error) string {
	s := reason.String() + ": " + cause.Error()
	if len(s) > 256 {
		s = s[:256]
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func (c *Consumer[T]) ackFailed(what string, err error) {
	c.c.AckFailed()
	c.logWarn("natsq: acknowledgement not sent; the server redelivers after AckWait", "kind", what, "err", err)
}
