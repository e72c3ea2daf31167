// Package metrics implements the subscriber service's metrics with
// Prometheus: Lifecycle is subscription.Metrics, Subscribers the gauge of
// subscribers by state read from the store at scrape time. The names,
// labels and meanings are the catalogue's (docs/metrics.md).
package metrics

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Lifecycle implements subscription.Metrics:
//
//	subscriber_subscriptions_total{result}      sign-ups by the address's state
//	subscriber_confirmations_total              confirmations
//	subscriber_unsubscribes_total{channel}      PENDING/ACTIVE → UNSUBSCRIBED/SUPPRESSED
//	subscriber_rate_limited_total{limit}        Subscribe refused by an abuse limit
//	subscriber_delivery_failures_total{kind}    bounces and complaints reported
//
// They count what this replica did: sum them over replicas.
type Lifecycle struct {
	signups       *prometheus.CounterVec
	confirmations prometheus.Counter
	unsubscribes  *prometheus.CounterVec
	limited       *prometheus.CounterVec
	failures      *prometheus.CounterVec
}

var _ subscription.Metrics = (*Lifecycle)(nil)

// Label values exported at zero from the start, so rates and ratios work
// before the first event.
var (
	signupResults = []string{"new", "pending", "active", "unsubscribed", "suppressed"}
	channels      = []subscription.Channel{subscription.ChannelAPI, subscription.ChannelOneClick, subscription.ChannelPage,
		subscription.ChannelPreferences, subscription.ChannelOperator, subscription.ChannelBounce}
	limits       = []string{"ip", "network", "mailbox", "global"}
	failureKinds = []subscription.FailureKind{subscription.FailureHardBounce, subscription.FailureComplaint}
)

// NewLifecycle registers the lifecycle counters on reg.
func NewLifecycle(reg prometheus.Registerer) (*Lifecycle, error) {
	m := &Lifecycle{
		signups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriber_subscriptions_total",
			Help: "Sign-ups handled (Subscribe and imported rows), by the state the address was in: new, pending, active, unsubscribed, suppressed.",
		}, []string{"result"}),
		confirmations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subscriber_confirmations_total",
			Help: "Pending subscribers who confirmed.",
		}),
		unsubscribes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriber_unsubscribes_total",
			Help: "Pending or active subscribers who stopped getting mail (unsubscribed or suppressed), by channel.",
		}, []string{"channel"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriber_rate_limited_total",
			Help: "Subscribe requests refused by an abuse limit (ip, network, mailbox, global).",
		}, []string{"limit"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriber_delivery_failures_total",
			Help: "Hard bounces and complaints reported by the sender (RecordDeliveryFailure), by kind (bounce, complaint).",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.signups, m.confirmations, m.unsubscribes, m.limited, m.failures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range signupResults {
		m.signups.WithLabelValues(r)
	}
	for _, ch := range channels {
		m.unsubscribes.WithLabelValues(channelLabel(ch))
	}
	for _, l := range limits {
		m.limited.WithLabelValues(l)
	}
	for _, k := range failureKinds {
		m.failures.WithLabelValues(failureLabel(k))
	}
	return m, nil
}

// Signup implements subscription.Metrics.
func (m *Lifecycle) Signup(result string) { m.signups.WithLabelValues(result).Inc() }

// Confirmed implements subscription.Metrics.
func (m *Lifecycle) Confirmed() { m.confirmations.Inc() }

// Left implements subscription.Metrics.
func (m *Lifecycle) Left(ch subscription.Channel) {
	m.unsubscribes.WithLabelValues(channelLabel(ch)).Inc()
}

// RateLimited implements subscription.Metrics.
func (m *Lifecycle) RateLimited(limit string) { m.limited.WithLabelValues(limit).Inc() }

// DeliveryFailure implements subscription.Metrics.
func (m *Lifecycle) DeliveryFailure(kind subscription.FailureKind) {
	m.failures.WithLabelValues(failureLabel(kind)).Inc()
}

// channelLabel is a channel as a label value ("one-click" → "one_click").
func channelLabel(ch subscription.Channel) string { return strings.ReplaceAll(string(ch), "-", "_") }

// failureLabel is a failure kind as a label value: bounce or complaint.
func failureLabel(k subscription.FailureKind) string {
	if k == subscription.FailureHardBounce {
		return "bounce"
	}
	return string(k)
}

// StateCounter reads the number of subscribers in each state from where
// the records are kept (redisstore.Store: the state indexes' sizes).
type StateCounter interface {
	StateCounts(ctx context.Context) (map[subscription.State]int64, error)
}

// readTimeout bounds the store read of one scrape.
const readTimeout = 5 * time.Second

// Subscribers is a prometheus.Collector of subscriber_subscribers{state},
// read from the store when Prometheus scrapes. It describes the shared
// store, so every replica reports the same values: aggregate with max, not
// sum. When the store cannot be read the gauge is left out of the scrape
// (and the failure logged) rather than reported stale.
type Subscribers struct {
	src   StateCounter
	log   *slog.Logger
	gauge *prometheus.GaugeVec
}

// NewSubscribers registers the gauge, read from src, on reg.
func NewSubscribers(reg prometheus.Registerer, src StateCounter, log *slog.Logger) (*Subscribers, error) {
	c := &Subscribers{src: src, log: log, gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "subscriber_subscribers",
		Help: "Subscribers by state (pending, active, unsubscribed, suppressed), from the store's state indexes. The same in every replica.",
	}, []string{"state"})}
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *Subscribers) Describe(ch chan<- *prometheus.Desc) { c.gauge.Describe(ch) }

// Collect implements prometheus.Collector.
func (c *Subscribers) Collect(ch chan<- prometheus.Metric) {
	// Collect has no context of its own: bound the read.
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	counts, err := c.src.StateCounts(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "metrics: counting subscribers failed; subscriber_subscribers is left out of this scrape", "err", err)
		return
	}
	for st, n := range counts {
		c.gauge.WithLabelValues(st.String()).Set(float64(n))
	}
	c.gauge.Collect(ch)
}
