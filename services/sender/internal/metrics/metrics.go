// Package metrics implements delivery.Metrics with Prometheus.
package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Delivery are the delivery metrics.
type Delivery struct {
	sent      *prometheus.CounterVec
	dead      *prometheus.CounterVec
	retried   *prometheus.CounterVec
	duration  prometheus.Histogram
	dials     prometheus.Counter
	cancelled *prometheus.CounterVec
	unknown   *prometheus.CounterVec
	throttled prometheus.Counter
	missing   prometheus.Counter
	leaseLost prometheus.Counter
}

var _ delivery.Metrics = (*Delivery)(nil)

// NewDelivery creates the delivery metrics and registers them on reg (the
// service's own registry, so several services can share a process).
func NewDelivery(reg prometheus.Registerer) (*Delivery, error) {
	m := &Delivery{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_messages_sent_total",
			Help: "Messages the relay accepted (250 after DATA), by lane.",
		}, []string{"lane"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_messages_dead_total",
			Help: "Messages that failed permanently (5xx or too many attempts), by lane.",
		}, []string{"lane"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_messages_retried_total",
			Help: "Delivery attempts that failed temporarily and will be retried, by lane.",
		}, []string{"lane"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sender_smtp_send_duration_seconds",
			Help:    "Time for one SMTP transaction (MAIL FROM to the reply after DATA), whatever its outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		dials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sender_smtp_dial_failures_total",
			Help: "Failed attempts to connect to the relay (not counted as message attempts).",
		}),
		cancelled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_messages_cancelled_total",
			Help: "Messages not sent because their recipient was cancelled (unsubscribed or suppressed) after they were queued, by lane.",
		}, []string{"lane"}),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_outcome_unknown_total",
			Help: "Sends whose outcome is unknown (no reply to the final dot), by lane.",
		}, []string{"lane"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sender_relay_throttled_total",
			Help: "Throttling replies (421, 451, 454) from the relay; each slows the relay down.",
		}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sender_missing_records_total",
			Help: "ALARM: queue entries whose message record was missing (Redis lost data, e.g. evicted keys); dead-lettered to snd:dlq:{p}.",
		}),
		leaseLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sender_lease_lost_total",
			Help: "Sends given up because the worker's delivery lease was lost (it stalled past the lease).",
		}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.dead, m.retried, m.duration, m.dials, m.cancelled, m.unknown, m.throttled, m.missing, m.leaseLost} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register delivery metrics: %w", err)
		}
	}
	for _, lane := range queue.Lanes() { // export zeros, so rates work from the start
		m.sent.WithLabelValues(lane.String())
		m.dead.WithLabelValues(lane.String())
		m.retried.WithLabelValues(lane.String())
		m.cancelled.WithLabelValues(lane.String())
		m.unknown.WithLabelValues(lane.String())
	}
	return m, nil
}

// Sent implements delivery.Metrics.
func (m *Delivery) Sent(lane queue.Lane) { m.sent.WithLabelValues(lane.String()).Inc() }

// Dead implements delivery.Metrics.
func (m *Delivery) Dead(lane queue.Lane) { m.dead.WithLabelValues(lane.String()).Inc() }

// Retried implements delivery.Metrics.
func (m *Delivery) Retried(lane queue.Lane) { m.retried.WithLabelValues(lane.String()).Inc() }

// SendDuration implements delivery.Metrics.
func (m *Delivery) SendDuration(d time.Duration) { m.duration.Observe(d.Seconds()) }

// DialFailed implements delivery.Metrics.
func (m *Delivery) DialFailed() { m.dials.Inc() }

// Cancelled implements delivery.Metrics.
func (m *Delivery) Cancelled(lane queue.Lane) { m.cancelled.WithLabelValues(lane.String()).Inc() }

// OutcomeUnknown implements delivery.Metrics.
func (m *Delivery) OutcomeUnknown(lane queue.Lane) { m.unknown.WithLabelValues(lane.String()).Inc() }

// Throttled implements delivery.Metrics.
func (m *Delivery) Throttled() { m.throttled.Inc() }

// MissingRecord implements delivery.Metrics.
func (m *Delivery) MissingRecord() { m.missing.Inc() }

// LeaseLost implements delivery.Metrics.
func (m *Delivery) LeaseLost() { m.leaseLost.Inc() }
