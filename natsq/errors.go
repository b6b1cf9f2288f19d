package natsq

import (
	"errors"
)

// ErrRunTwice is returned by [Consumer.Run] when Run was already called: a
// Consumer runs once, like the pool it owns.
var ErrRunTwice = errors.New("natsq: Run already called on this consumer")

// PermanentError marks a handler error that retrying cannot fix. The
// consumer terminates the message (JetStream's Term, with the error text as
// the reason) instead of asking for redelivery. Create one with [Permanent];
// find one with errors.As.
type PermanentError struct {
	Err error
}

// Permanent wraps err so that the consumer terminates the message instead of
// retrying it. Permanent(nil) is nil, so a handler may return
// Permanent(validate(job)) unconditionally.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Error returns the wrapped error's text prefixed with "permanent: ".
func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or any error it wraps, was marked by
// [Permanent].
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// DecodeError is the error the consumer reports (to the pool, the log and
// the dead-letter headers) for a message whose payload the codec could not
// decode. Such a message is terminated: redelivering it cannot help.
type DecodeError struct {
	Subject  string // the message's subject
	Sequence uint64 // its stream sequence
	Err      error  // the codec's error
}

// Error describes the message and the codec's error.
func (e *DecodeError) Error() string {
	return "natsq: cannot decode message " + e.Subject + " #" + uitoa(e.Sequence) + ": " + e.Err.Error()
}

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }
