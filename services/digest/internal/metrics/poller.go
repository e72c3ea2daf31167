// Package metrics holds the digest service's Prometheus adapters for the
// small metrics interfaces its packages declare (poller.Metrics,
// digest.Metrics, library.Metrics) and the scheduler's gauges.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Poller implements poller.Metrics with Prometheus collectors:
//
//	digest_poller_requests_total{source,outcome}                fetches and how they ended
//	digest_poller_request_duration_seconds{source}              fetch (and import) duration
//	digest_poller_papers_total{source,kind}                     papers created / updated
//	digest_poller_leader                                        1 while this replica polls
//	digest_poller_last_success_timestamp_seconds{source}        the last ok fetch
//
// The names, labels and meanings are the catalogue's (docs/metrics.md),
// which the alerts and the dashboard use.
type Poller struct {
	requests    *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	papers      *prometheus.CounterVec
	leader      prometheus.Gauge
	lastSuccess *prometheus.GaugeVec
}

// NewPoller registers the poller's collectors on reg.
func NewPoller(reg prometheus.Registerer) (*Poller, error) {
	m := &Poller{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_poller_requests_total",
			Help: "Source fetches by source and outcome (ok, rate_limited, http_error, timeout, network, too_large, invalid, store_error).",
		}, []string{"source", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "digest_poller_request_duration_seconds",
			Help:    "Duration of one source fetch and its import.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"source"}),
		papers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_poller_papers_total",
			Help: "Papers the poller stored, by source and kind (created, updated).",
		}, []string{"source", "kind"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_poller_leader",
			Help: "1 while this replica holds the poller lease and polls.",
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digest_poller_last_success_timestamp_seconds",
			Help: "Unix time of the source's last ok fetch (by this replica).",
		}, []string{"source"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.papers, m.leader, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Request implements poller.Metrics.
func (m *Poller) Request(source, outcome string, elapsed time.Duration) {
	m.requests.WithLabelValues(source, outcome).Inc()
	m.seconds.WithLabelValues(source).Observe(elapsed.Seconds())
	if outcome == "ok" {
		m.lastSuccess.WithLabelValues(source).SetToCurrentTime()
	}
}

// Papers implements poller.Metrics.
func (m *Poller) Papers(source string, created, updated int) {
	m.papers.WithLabelValues(source, "created").Add(float64(created))
	m.papers.WithLabelValues(source, "updated").Add(float64(updated))
}

// Leader implements poller.Metrics.
func (m *Poller) Leader(held bool) {
	if held {
		m.leader.Set(1)
		return
	}
	m.leader.Set(0)
}
