package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// QueueSource is what the queue gauges are read from on each scrape. The
// redisstore.Store implements it with a few cheap commands per stream
// (XINFO GROUPS, XLEN, XPENDING summary, ZCARD): no scan of messages.
type QueueSource interface {
	// Stats returns the statistics of each lane (what GetQueueStats shows).
	Stats(ctx context.Context) ([]queue.LaneStats, error)
	// DeadLetters returns how many messages are dead-lettered now.
	DeadLetters(ctx context.Context) (queue.DeadLetterCounts, error)
	// GetPause returns the kill switch's state.
	GetPause(ctx context.Context) (queue.Pause, error)
}

// queueReadTimeout bounds the reads of one scrape (Prometheus' default
// scrape timeout is 10 s).
const queueReadTimeout = 5 * time.Second

// Queue is a prometheus.Collector of the queue's state, read from the
// store when Prometheus scrapes:
//
//	sender_queue_messages{lane,state}        waiting / pending / delayed
//	sender_queue_oldest_age_seconds{lane}    the oldest unacknowledged entry
//	sender_dead_letters                      the dead sets' size
//	sender_paused                            1 while PauseSending holds
//
// They describe the shared queue, so every replica reports the same values:
// aggregate with max, not sum (docs/metrics.md). When the store cannot be
// read, the gauges of that read are left out of the scrape (and the
// failure logged) rather than reported stale.
type Queue struct {
	src      QueueSource
	log      *slog.Logger
	messages *prometheus.GaugeVec
	oldest   *prometheus.GaugeVec
	dead     prometheus.Gauge
	paused   prometheus.Gauge
}

// NewQueue registers the queue gauges, read from src, on reg.
func NewQueue(reg prometheus.Registerer, src QueueSource, log *slog.Logger) (*Queue, error) {
	q := &Queue{
		src: src,
		log: log,
		messages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sender_queue_messages",
			Help: "Messages in the queue by lane and state: waiting (not read yet), pending (read, unfinished), delayed (waiting for a retry). The same in every replica.",
		}, []string{"lane", "state"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sender_queue_oldest_age_seconds",
			Help: "Age of the oldest unacknowledged message of the lane (pending, else waiting); 0 when none. The same in every replica.",
		}, []string{"lane"}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_dead_letters",
			Help: "Messages dead-lettered now (RetryDeadLetters queues them again). The same in every replica.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_paused",
			Help: "1 while sending is paused (PauseSending), else 0. The same in every replica.",
		}),
	}
	if err := reg.Register(q); err != nil {
		return nil, err
	}
	return q, nil
}

// Describe implements prometheus.Collector.
func (q *Queue) Describe(ch chan<- *prometheus.Desc) {
	q.messages.Describe(ch)
	q.oldest.Describe(ch)
	q.dead.Describe(ch)
	q.paused.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the store, then sends
// what it could read.
func (q *Queue) Collect(ch chan<- prometheus.Metric) {
	// Collect has no context of its own: bound the reads.
	ctx, cancel := context.WithTimeout(context.Background(), queueReadTimeout)
	defer cancel()
	if stats, err := q.src.Stats(ctx); err != nil {
		q.log.WarnContext(ctx, "metrics: reading the queue statistics failed; the queue gauges are left out of this scrape", "err", err)
	} else {
		for _, st := range stats {
			lane := st.Lane.String()
			q.messages.WithLabelValues(lane, "waiting").Set(float64(st.Waiting))
			q.messages.WithLabelValues(lane, "pending").Set(float64(st.Pending))
			q.messages.WithLabelValues(lane, "delayed").Set(float64(st.Retrying))
			q.oldest.WithLabelValues(lane).Set(st.OldestAge.Seconds())
		}
		q.messages.Collect(ch)
		q.oldest.Collect(ch)
	}
	if n, err := q.src.DeadLetters(ctx); err != nil {
		q.log.WarnContext(ctx, "metrics: counting dead letters failed; sender_dead_letters is left out of this scrape", "err", err)
	} else {
		q.dead.Set(float64(n.Dead))
		q.dead.Collect(ch)
	}
	if p, err := q.src.GetPause(ctx); err != nil {
		q.log.WarnContext(ctx, "metrics: reading the pause failed; sender_paused is left out of this scrape", "err", err)
	} else {
		q.paused.Set(boolGauge(p.Paused))
		q.paused.Collect(ch)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
