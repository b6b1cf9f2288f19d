package natsq_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

// flakyJS refuses the first refusals stream creations with err, then
// passes them to the real JetStream; its streams refuse consumer creations
// the same way.
type flakyJS struct {
	jetstream.JetStream
	err      error
	refusals int32
	streams  atomic.Int32 // CreateOrUpdateStream calls
	cons     atomic.Int32 // CreateOrUpdateConsumer calls
}

func (f *flakyJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if f.streams.Add(1) <= f.refusals {
		return nil, f.err
	}
	s, err := f.JetStream.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &flakyStream{Stream: s, js: f}, nil
}

type flakyStream struct {
	jetstream.Stream
	js *flakyJS
}

func (s *flakyStream) CreateOrUpdateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if s.js.cons.Add(1) <= s.js.refusals {
		return nil, s.js.err
	}
	return s.Stream.CreateOrUpdateConsumer(ctx, cfg)
}

var (
	errPeerOffline = &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}
	errNoPeers     = &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"}
	errUnavailable = &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
)

func setupCfg() natsq.QueueConfig {
	return natsq.QueueConfig{Stream: "JOBS", Subjects: []string{"jobs.>"}, Consumer: "workers"}
}

// TestSetupRetriesTransientPlacement: the errors a forming cluster gives
// for a moment are retried, for the stream and for the consumer.
func TestSetupRetriesTransientPlacement(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{{"peer offline", errPeerOffline}, {"unavailable", errUnavailable}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, embedded.Options{StoreDir: t.TempDir()})
			_, js := connect(t, s.ClientURL())
			f := &flakyJS{JetStream: js, err: tc.err, refusals: 3}
			cons, err := natsq.Setup(context.Background(), f, setupCfg())
			if err != nil {
				t.Fatalf("Setup = %v; want success after 3 refusals each", err)
			}
			if got := cons.CachedInfo().Name; got != "workers" {
				t.Errorf("consumer name = %q; want workers", got)
			}
			if s, c := f.streams.Load(), f.cons.Load(); s != 4 || c != 4 {
				t.Errorf("calls: %d stream, %d consumer; want 4 each", s, c)
			}
		})
	}
}

// TestSetupPermanentPlacementError: a placement that can never succeed
// (more replicas than servers) and any other error return at once.
func TestSetupPermanentPlacementError(t *testing.T) {
	s := startServer(t, embedded.Options{StoreDir: t.TempDir()})
	_, js := connect(t, s.ClientURL())
	for _, e := range []error{errNoPeers, errors.New("boom")} {
		f := &flakyJS{JetStream: js, err: e, refusals: 1 << 30}
		_, err := natsq.Setup(context.Background(), f, setupCfg())
		if !errors.Is(err, e) || !strings.Contains(err.Error(), `natsq: stream "JOBS"`) {
			t.Errorf("Setup = %v; want the stream's error %v", err, e)
		}
		if n := f.streams.Load(); n != 1 {
			t.Errorf("%v: %d calls; want 1", e, n)
		}
	}
}

// TestSetupTransientGivesUp: retries end when ctx ends or when the retry
// time has passed, with the last error.
func TestSetupTransientGivesUp(t *testing.T) {
	s := startServer(t, embedded.Options{StoreDir: t.TempDir()})
	_, js := connect(t, s.ClientURL())

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	f := &flakyJS{JetStream: js, err: errPeerOffline, refusals: 1 << 30}
	_, err := natsq.Setup(ctx, f, setupCfg())
	if !errors.Is(err, errPeerOffline) {
		t.Errorf("Setup with a short ctx = %v; want %v", err, errPeerOffline)
	}
	if n := f.streams.Load(); n < 2 {
		t.Errorf("Setup tried %d times before its ctx ended; want retries", n)
	}

	defer natsq.SetPlacementRetryFor(400 * time.Millisecond)()
	f = &flakyJS{JetStream: js, err: errUnavailable, refusals: 1 << 30}
	start := time.Now()
	_, err = natsq.Setup(context.Background(), f, setupCfg())
	if !errors.Is(err, errUnavailable) {
		t.Errorf("Setup = %v; want %v", err, errUnavailable)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Setup gave up after %v; want about 400ms", d)
	}
	if n := f.streams.Load(); n < 2 {
		t.Errorf("Setup tried %d times; want retries", n)
	}
}
