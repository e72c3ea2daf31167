package digestd_test

import (
	"context"
	"testing"
	"time"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/metrics/metricstest"

	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

// scrape reads /metrics over HTTP: series (name and labels as exposed) →
// value.
func (s *service) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	return metricstest.Scrape(t, s.httpURL+"/metrics")
}

// waitMetrics scrapes until every series has its wanted value, under a
// deadline, and reports the ones that never did.
func (s *service) waitMetrics(t *testing.T, want map[string]float64) {
	t.Helper()
	metricstest.Wait(t, s.httpURL+"/metrics", want, 20*time.Second)
}

// Operator runs and imports are counted; a run in progress shows in
// digest_runs_active.
func TestRunAndImportMetrics(t *testing.T) {
	s := start(t, nil)
	s.waitMetrics(t, map[string]float64{
		`digest_runs_active`: 0,
		`digest_runs_total{state="succeeded",trigger="operator"}`: 0,
		`digest_papers_imported_total{format="hf_daily_json"}`:    0,
	})
	if _, ok := s.scrape(t)[`digest_scheduler_last_slot_timestamp_seconds`]; ok {
		t.Error("digest_scheduler_last_slot_timestamp_seconds is exported before the scheduler ever ran")
	}
	s.importFixture(t)
	if _, err := s.client.UpsertPapers(context.Background(), &digestv1.UpsertPapersRequest{Papers: []*digestv1.Paper{{
		Id: "2606.99999", Title: "An operator's paper", Summary: "Added by hand.", Authors: []string{"A. Person"},
	}}}); err != nil {
		t.Fatalf("UpsertPapers: %v", err)
	}
	s.waitMetrics(t, map[string]float64{
		`digest_papers_imported_total{format="hf_daily_json"}`: 30,
		`digest_papers_imported_total{format="upsert"}`:        1,
	})

	s.addDue(t, 3)
	s.runDigest(t, "2026-06-12", false)
	s.runDigest(t, "2026-06-12", false) // everything comes back duplicate
	s.runDigest(t, "2026-06-12", true)  // dry runs are not counted
	s.waitMetrics(t, map[string]float64{
		`digest_runs_total{state="succeeded",trigger="operator"}`: 2,
		`digest_runs_total{state="failed",trigger="operator"}`:    0,
		`digest_run_subscribers_total{outcome="queued"}`:          3,
		`digest_run_subscribers_total{outcome="duplicate"}`:       3,
		`digest_runs_active`: 0,
	})

	blocked := s.sender.BlockEnqueue()
	if _, err := s.client.RunDigest(context.Background(), &digestv1.RunDigestRequest{Edition: "2026-06-13"}); err != nil {
		t.Fatal(err)
	}
	<-blocked // the run is inside Enqueue until the service stops
	s.waitMetrics(t, map[string]float64{`digest_runs_active`: 1})
}

// The scheduler's replica says it leads, its slot runs are counted, and
// the last finished slot is the shared cursor.
func TestSchedulerMetrics(t *testing.T) {
	s := start(t, map[string]string{"DIGEST_SCHEDULER": "true", "DIGEST_SCHEDULER_TICK": "1s"})
	s.waitMetrics(t, map[string]float64{
		`digest_scheduler_leader`:                                  1,
		`digest_runs_total{state="succeeded",trigger="scheduler"}`: 1,
	})
	cursor, err := redisstore.New(s.rdb).Cursor(context.Background())
	if err != nil || cursor.IsZero() {
		t.Fatalf("scheduler cursor = %v, %v; want the slot it ran", cursor, err)
	}
	if now := schedule.SlotStart(time.Now().UTC()); cursor.After(now) || cursor.Before(now.Add(-schedule.SlotLength)) {
		t.Errorf("cursor %v is not the current slot %v (or the one before, across a slot boundary)", cursor, now)
	}
	s.waitMetrics(t, map[string]float64{`digest_scheduler_last_slot_timestamp_seconds`: float64(cursor.Unix())})
}
