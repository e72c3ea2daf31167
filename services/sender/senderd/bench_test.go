package senderd_test

import (
	"fmt"
	"testing"
	"time"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
)

// BenchmarkDeliveryThroughput measures end to end delivery: Enqueue over
// gRPC in batches of 100 (one shared content, per-recipient variables, the
// digest shape), 4 partitions, 4 workers with one SMTP connection each, to
// the in-process mail catcher, until every message is SENT and acknowledged.
// One op is one batch of 100 messages, enqueued and delivered: ns/op covers
// the whole run until the queue is drained.
func BenchmarkDeliveryThroughput(b *testing.B) {
	h := newHarness(b)
	h.start(map[string]string{"SENDER_WORKERS": "4", "SENDER_PARTITIONS": "4"})
	ctx := testContext(b)
	content := h.putContent(ctx, &senderv1.Content{
		Subject:  "Today's papers",
		HtmlBody: "<p>Hello</p>" + fmt.Sprintf("%04000d", 0) + `<a href="{{unsubscribe_url}}">Unsubscribe</a>`,
		TextBody: "Hello\n" + fmt.Sprintf("%02000d", 0) + "\nUnsubscribe: {{unsubscribe_url}}",
	})
	const batch = 100
	sent := 0
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		msgs := make([]*senderv1.OutboundMessage, batch)
		for i := range msgs {
			url := fmt.Sprintf("https://paperroute.example/unsubscribe?token=t%d", sent)
			msgs[i] = bulkMessage(fmt.Sprintf("bench:%d", sent), fmt.Sprintf("r%d@example.com", sent), content, map[string]string{"unsubscribe_url": url})
			msgs[i].ListUnsubscribeUrl = url
			sent++
		}
		h.enqueue(ctx, msgs...)
	}
	if err := eventually(ctx, func() bool { return len(h.mail.Messages()) >= sent }); err != nil {
		b.Fatalf("only %d of %d messages delivered", len(h.mail.Messages()), sent)
	}
	h.waitDrained(ctx)
	b.StopTimer()
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "msgs/s")
}
