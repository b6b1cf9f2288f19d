package natsq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/workpool-go/workpool/natsq"
	"github.com/workpool-go/workpool/natsq/embedded"
)

func TestPrometheusMetrics(t *testing.T) {
	srv := startServer(t, embedded.Options{})
	_, js := connect(t, srv.ClientURL())
	cons := queue(t, js, natsq.QueueConfig{AckWait: 5 * time.Second})
	reg := prometheus.NewPedanticRegistry()
	m, err := natsq.NewPrometheusMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"queue": "jobs"}, reg))
	if err != nil {
		t.Fatalf("NewPrometheusMetrics: %v", err)
	}
	l := newLedger(3)
	c := newConsumer(t, js, cons, func(ctx context.Context, msg natsq.Message[job]) error {
		defer l.done(msg.Value.ID)
		if msg.Value.ID == "m-2" {
			return natsq.Permanent(errors.New("no"))
		}
		return nil
	}, append(fast(2, 2), natsq.WithMetrics(m))...)
	stop := run(t, c)
	publish(t, js, "m", 3, nil)
	l.wait(t, 10*time.Second)
	if _, err := stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}

	want := `
# HELP natsq_capacity The most messages the consumer holds at once.
# TYPE natsq_capacity gauge
natsq_capacity{queue="jobs"} 4
# HELP natsq_messages_acked_total Messages acknowledged after their handler succeeded.
# TYPE natsq_messages_acked_total counter
natsq_messages_acked_total{queue="jobs"} 2
# HELP natsq_messages_fetched_total Messages received from the JetStream consumer.
# TYPE natsq_messages_fetched_total counter
natsq_messages_fetched_total{queue="jobs"} 3
# HELP natsq_messages_in_flight Messages fetched and not yet acked, naked or termed.
# TYPE natsq_messages_in_flight gauge
natsq_messages_in_flight{queue="jobs"} 0
# HELP natsq_messages_termed_total Messages terminated, by reason.
# TYPE natsq_messages_termed_total counter
natsq_messages_termed_total{queue="jobs",reason="max_deliver"} 0
natsq_messages_termed_total{queue="jobs",reason="permanent"} 1
natsq_messages_termed_total{queue="jobs",reason="undecodable"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"natsq_capacity", "natsq_messages_acked_total", "natsq_messages_fetched_total",
		"natsq_messages_in_flight", "natsq_messages_termed_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("GatherAndLint = %v, %v; want no problems", problems, err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 15 {
		t.Errorf("GatherAndCount = %d, %v; want 15 series", n, err)
	}

	// One adapter per consumer: a second registration of the same names
	// fails, and so does binding the adapter to a second consumer.
	if _, err := natsq.NewPrometheusMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"queue": "jobs"}, reg)); err == nil {
		t.Error("second NewPrometheusMetrics with the same labels succeeded; want an error")
	}
	if _, err := natsq.NewConsumer(js, cons, func(context.Context, natsq.Message[job]) error { return nil }, natsq.WithMetrics(m)); err == nil {
		t.Error("NewConsumer with already bound metrics succeeded; want an error")
	}
}
