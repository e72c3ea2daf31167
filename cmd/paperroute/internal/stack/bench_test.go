package stack_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// BenchmarkDigestEndToEnd measures whole editions through all three
// services: RunDigest for 500 active subscribers until the SMTP catcher
// has every digest (ListDueSubscribers, rendering, PutContent, Enqueue,
// Redis Streams, 4 SMTP workers). It reports digests delivered per second.
func BenchmarkDigestEndToEnd(b *testing.B) {
	const subscribers = 500
	w := startWorld(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	papers, err := os.ReadFile("../devmode/sample/hf-daily-papers-2026-06-12.json")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.dig.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: papers}); err != nil {
		b.Fatal(err)
	}
	link := regexp.MustCompile(`/confirm\?token=([A-Za-z0-9_.\-]+)`)
	for i := range subscribers {
		email := fmt.Sprintf("reader%04d@example.org", i)
		if _, err := w.sub.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: email}); err != nil {
			b.Fatal(err)
		}
		m, err := w.catcher.WaitFor(ctx, mailcatcher.To(email))
		if err != nil {
			b.Fatal(err)
		}
		p, err := mailcatcher.Parse(m.Data)
		if err != nil {
			b.Fatal(err)
		}
		sm := link.FindStringSubmatch(p.Text)
		if sm == nil {
			b.Fatalf("no confirm link for %s", email)
		}
		if _, err := w.sub.ConfirmSubscription(ctx, &subscriberv1.ConfirmSubscriptionRequest{Token: sm[1]}); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		edition := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format(time.DateOnly)
		before := w.bulkStats(ctx).GetSentCount()
		run := w.runDigest(ctx, edition)
		if run.GetQueuedCount() != subscribers {
			b.Fatalf("run queued %d, want %d", run.GetQueuedCount(), subscribers)
		}
		for w.bulkStats(ctx).GetSentCount() < before+subscribers {
			select {
			case <-ctx.Done():
				b.Fatal("digests not delivered in time")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*subscribers)/time.Since(start).Seconds(), "digests/s")
}
