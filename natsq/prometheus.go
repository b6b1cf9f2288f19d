package natsq

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// PrometheusMetrics is a [Metrics] that is also a prometheus.Collector for
// one consumer. Counters are atomics read at scrape time; the in-flight and
// capacity gauges are read from the consumer's [Consumer.Stats] when it is
// bound (NewConsumer binds it), so they are exact. Give each consumer its own
// PrometheusMetrics and tell them apart with a const label, for instance by
// registering through prometheus.WrapRegistererWith.
type PrometheusMetrics struct {
	fetched, redelivered, acked   atomic.Uint64
	deadLettered, heartbeats      atomic.Uint64
	ackFailures, fetchErrors      atomic.Uint64
	naked                         [numNakReasons]atomic.Uint64
	termed                        [numTermReasons]atomic.Uint64
	descFetched, descRedelivered  *prometheus.Desc
	descAcked, descNaked          *prometheus.Desc
	descTermed, descDeadLettered  *prometheus.Desc
	descHeartbeats, descAckFailed *prometheus.Desc
	descFetchErrors, descInFlight *prometheus.Desc
	descCapacity                  *prometheus.Desc

	mu    sync.Mutex
	stats func() Stats // guarded by mu; nil until bound
}

var (
	_ Metrics              = (*PrometheusMetrics)(nil)
	_ StatsBinder          = (*PrometheusMetrics)(nil)
	_ prometheus.Collector = (*PrometheusMetrics)(nil)
)

// NewPrometheusMetrics returns metrics for one consumer, registered on reg
// (never the global registry unless that is what reg is). It returns
// Register's error, such as a prometheus.AlreadyRegisteredError.
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	if reg == nil {
		return nil, errors.New("natsq: nil prometheus.Registerer")
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("natsq_"+name, help, labels, nil)
	}
	m := &PrometheusMetrics{
		descFetched:      d("messages_fetched_total", "Messages received from the JetStream consumer."),
		descRedelivered:  d("messages_redelivered_total", "Messages started on a redelivery (attempt above 1)."),
		descAcked:        d("messages_acked_total", "Messages acknowledged after their handler succeeded."),
		descNaked:        d("messages_naked_total", "Messages handed back for redelivery, by reason.", "reason"),
		descTermed:       d("messages_termed_total", "Messages terminated, by reason.", "reason"),
		descDeadLettered: d("messages_dead_lettered_total", "Messages republished to the dead-letter subject."),
		descHeartbeats:   d("heartbeats_total", "InProgress acknowledgements sent for held messages."),
		descAckFailed:    d("ack_failures_total", "Acknowledgements that could not be sent."),
		descFetchErrors:  d("fetch_errors_total", "Failed fetch requests."),
		descInFlight:     d("messages_in_flight", "Messages fetched and not yet acked, naked or termed."),
		descCapacity:     d("capacity", "The most messages the consumer holds at once."),
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Bind makes Collect report the consumer's in-flight and capacity gauges.
// It fails if the metrics are already bound to a consumer.
func (m *PrometheusMetrics) Bind(stats func() Stats) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats != nil {
		return errors.New("natsq: PrometheusMetrics already bound to a consumer")
	}
	m.stats = stats
	return nil
}

func (m *PrometheusMetrics) Fetched()            { m.fetched.Add(1) }
func (m *PrometheusMetrics) Redelivered()        { m.redelivered.Add(1) }
func (m *PrometheusMetrics) Acked()              { m.acked.Add(1) }
func (m *PrometheusMetrics) Naked(r NakReason)   { m.naked[r].Add(1) }
func (m *PrometheusMetrics) Termed(r TermReason) { m.termed[r].Add(1) }
func (m *PrometheusMetrics) DeadLettered()       { m.deadLettered.Add(1) }
func (m *PrometheusMetrics) Heartbeat()          { m.heartbeats.Add(1) }
func (m *PrometheusMetrics) AckFailed()          { m.ackFailures.Add(1) }
func (m *PrometheusMetrics) FetchFailed()        { m.fetchErrors.Add(1) }

// Describe sends the descriptors of every metric.
func (m *PrometheusMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		m.descFetched, m.descRedelivered, m.descAcked, m.descNaked, m.descTermed,
		m.descDeadLettered, m.descHeartbeats, m.descAckFailed, m.descFetchErrors,
		m.descInFlight, m.descCapacity,
	} {
		ch <- d
	}
}

// Collect sends the current values; the gauges only once bound.
func (m *PrometheusMetrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v *atomic.Uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	counter(m.descFetched, &m.fetched)
	counter(m.descRedelivered, &m.redelivered)
	counter(m.descAcked, &m.acked)
	for r := range m.naked {
		counter(m.descNaked, &m.naked[r], NakReason(r).String())
	}
	for r := range m.termed {
		counter(m.descTermed, &m.termed[r], TermReason(r).String())
	}
	counter(m.descDeadLettered, &m.deadLettered)
	counter(m.descHeartbeats, &m.heartbeats)
	counter(m.descAckFailed, &m.ackFailures)
	counter(m.descFetchErrors, &m.fetchErrors)

	m.mu.Lock()
	stats := m.stats
	m.mu.Unlock()
	if stats != nil {
		s := stats()
		ch <- prometheus.MustNewConstMetric(m.descInFlight, prometheus.GaugeValue, float64(s.InFlight))
		ch <- prometheus.MustNewConstMetric(m.descCapacity, prometheus.GaugeValue, float64(s.Capacity))
	}
}
