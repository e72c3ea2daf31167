package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

type memOutbox struct {
	mu      sync.Mutex
	reports []delivery.Report
}

func (o *memOutbox) PendingReports(_ context.Context, _, limit int) ([]delivery.Report, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]delivery.Report(nil), o.reports[:min(limit, len(o.reports))]...), nil
}

func (o *memOutbox) DeleteReports(_ context.Context, _ int, ids []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	done := map[string]bool{}
	for _, id := range ids {
		done[id] = true
	}
	var keep []delivery.Report
	for _, r := range o.reports {
		if !done[r.ID] {
			keep = append(keep, r)
		}
	}
	o.reports = keep
	return nil
}

func (o *memOutbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.reports)
}

// flakySubscribers is down for its first calls, then records reports.
type flakySubscribers struct {
	mu       sync.Mutex
	downFor  int
	calls    int
	reported []string
}

func (f *flakySubscribers) RecordDeliveryFailure(_ context.Context, rcpt, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	switch {
	case f.calls <= f.downFor:
		return errors.New("unavailable")
	case rcpt == "refused@example.com":
		return fmt.Errorf("bad address: %w", delivery.ErrReportRefused)
	}
	f.reported = append(f.reported, rcpt)
	return nil
}

func TestReporterRetriesUntilTheSubscriberServiceTakesEveryReport(t *testing.T) {
	o := &memOutbox{}
	for i := range 3 {
		o.reports = append(o.reports, delivery.Report{ID: fmt.Sprint(i), Recipient: fmt.Sprintf("r%d@example.com", i), Detail: "550"})
	}
	o.reports = append(o.reports, delivery.Report{ID: "x", Recipient: "refused@example.com"})
	peer := &flakySubscribers{downFor: 2}
	r := delivery.NewReporter(o, peer, 1, logging.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "an empty outbox", func() bool { return o.len() == 0 })
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if len(peer.reported) != 3 || peer.calls < 6 {
		t.Errorf("reported %v after %d calls; want the 3 reports, after 2 failed calls and one refused", peer.reported, peer.calls)
	}
}
