package metrics

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
)

// Runs implements digest.Metrics and library.Metrics:
//
//	digest_runs_total{trigger,state}          runs finished (dry runs left out)
//	digest_run_subscribers_total{outcome}     what happened to each due subscriber
//	digest_runs_active                        runs in progress in this replica
//	digest_papers_imported_total{format}      papers stored by imports and upserts
//
// They count what this replica did: sum them over replicas.
type Runs struct {
	runs        *prometheus.CounterVec
	subscribers *prometheus.CounterVec
	active      prometheus.Gauge
	papers      *prometheus.CounterVec
}

var (
	_ digest.Metrics  = (*Runs)(nil)
	_ library.Metrics = (*Runs)(nil)
)

// Label values exported at zero from the start.
var (
	runTriggers = []string{"scheduler", "operator"}
	runStates   = []string{"succeeded", "failed"}
	runOutcomes = []string{"queued", "duplicate", "skipped", "failed", "missed"}
	formats     = []library.Format{library.FormatHFDailyJSON, library.FormatArxivAtom, library.FormatUnspecified}
)

// NewRuns registers the run and import metrics on reg.
func NewRuns(reg prometheus.Registerer) (*Runs, error) {
	m := &Runs{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_runs_total",
			Help: "Digest runs finished in this replica, by trigger (scheduler, operator) and state (succeeded, failed). Dry runs are not counted.",
		}, []string{"trigger", "state"}),
		subscribers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_run_subscribers_total",
			Help: "Due subscribers of finished runs by outcome (queued, duplicate, skipped, failed, missed): GetDigestRun's counts, summed. Dry runs are not counted.",
		}, []string{"outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_runs_active",
			Help: "Digest runs (dry runs included) in progress in this replica.",
		}),
		papers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_papers_imported_total",
			Help: "Papers stored (created or refreshed) by ImportPapers and the source poller (format hf_daily_json, arxiv_atom) and by UpsertPapers (format upsert).",
		}, []string{"format"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.subscribers, m.active, m.papers} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, t := range runTriggers {
		for _, s := range runStates {
			m.runs.WithLabelValues(t, s)
		}
	}
	for _, o := range runOutcomes {
		m.subscribers.WithLabelValues(o)
	}
	for _, f := range formats {
		m.papers.WithLabelValues(formatLabel(f))
	}
	return m, nil
}

// RunStarted implements digest.Metrics.
func (m *Runs) RunStarted() { m.active.Inc() }

// RunFinished implements digest.Metrics.
func (m *Runs) RunFinished(run digest.Run, state digest.RunState, c digest.Counts) {
	m.active.Dec()
	if run.DryRun {
		return
	}
	trigger := "operator"
	if run.Scheduled {
		trigger = "scheduler"
	}
	m.runs.WithLabelValues(trigger, strings.ToLower(state.String())).Inc()
	for outcome, n := range map[string]int64{
		"queued": c.Queued, "duplicate": c.Duplicate, "skipped": c.Skipped, "failed": c.Failed, "missed": c.Missed,
	} {
		m.subscribers.WithLabelValues(outcome).Add(float64(n))
	}
}

// PapersImported implements library.Metrics.
func (m *Runs) PapersImported(format library.Format, n int) {
	m.papers.WithLabelValues(formatLabel(format)).Add(float64(n))
}

// formatLabel is a format as a label value.
func formatLabel(f library.Format) string {
	switch f {
	case library.FormatHFDailyJSON:
		return "hf_daily_json"
	case library.FormatArxivAtom:
		return "arxiv_atom"
	}
	return "upsert"
}

// Scheduler holds the scheduler's metrics:
//
//	digest_scheduler_leader                          1 in the replica holding the lease
//	digest_scheduler_last_slot_timestamp_seconds     the last finished slot (read at scrape)
//
// The leader gauge is per replica (sum over replicas is 1 while the
// scheduler runs somewhere); the last slot is the shared cursor, the same
// in every replica (aggregate with max).
type Scheduler struct {
	store    digest.SchedulerStore
	log      *slog.Logger
	leader   prometheus.Gauge
	lastSlot prometheus.Gauge
}

// NewScheduler registers the scheduler's metrics on reg; the last slot is
// read from store's cursor at each scrape.
func NewScheduler(reg prometheus.Registerer, store digest.SchedulerStore, log *slog.Logger) (*Scheduler, error) {
	m := &Scheduler{
		store: store,
		log:   log,
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_scheduler_leader",
			Help: "1 while this replica holds the scheduler lease (it runs the delivery slots), else 0.",
		}),
		lastSlot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_scheduler_last_slot_timestamp_seconds",
			Help: "Start (Unix time) of the latest delivery slot the scheduler finished: the shared cursor, the same in every replica. Absent until the scheduler first ran.",
		}),
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Describe implements prometheus.Collector.
func (m *Scheduler) Describe(ch chan<- *prometheus.Desc) {
	m.leader.Describe(ch)
	m.lastSlot.Describe(ch)
}

// Collect implements prometheus.Collector: the leader gauge as last set,
// the last slot read from the store now.
func (m *Scheduler) Collect(ch chan<- prometheus.Metric) {
	m.leader.Collect(ch)
	// Collect has no context of its own: bound the read.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cursor, err := m.store.Cursor(ctx)
	switch {
	case err != nil:
		m.log.WarnContext(ctx, "metrics: reading the scheduler cursor failed; digest_scheduler_last_slot_timestamp_seconds is left out of this scrape", "err", err)
	case !cursor.IsZero():
		m.lastSlot.Set(float64(cursor.Unix()))
		m.lastSlot.Collect(ch)
	}
}

// Store returns store with every lease request's answer recorded in the
// leader gauge (an error counts as not holding it).
func (m *Scheduler) Store(store digest.SchedulerStore) digest.SchedulerStore {
	return &leaderStore{SchedulerStore: store, leader: m.leader}
}

type leaderStore struct {
	digest.SchedulerStore
	leader prometheus.Gauge
}

// AcquireLease implements digest.SchedulerStore.
func (s *leaderStore) AcquireLease(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	held, err := s.SchedulerStore.AcquireLease(ctx, owner, ttl)
	if held && err == nil {
		s.leader.Set(1)
	} else {
		s.leader.Set(0)
	}
	return held, err
}
