package senderd_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/platform/metrics/metricstest"
)

// scrape reads the service's /metrics over HTTP: series (name with its
// labels, as exposed) → value.
func (h *harness) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	return metricstest.Scrape(t, "http://"+h.httpAddr+"/metrics")
}

// waitMetric scrapes until cond holds for the series' value (absent: NaN
// is not used; a missing series fails cond with ok false).
func (h *harness) waitMetric(ctx context.Context, t *testing.T, series string, cond func(v float64) bool) float64 {
	t.Helper()
	var last float64
	var seen bool
	err := eventually(ctx, func() bool {
		last, seen = h.scrape(t)[series]
		return seen && cond(last)
	})
	if err != nil {
		t.Fatalf("%s never met the condition (last seen %v, present %v)", series, last, seen)
	}
	return last
}

func equals(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func atLeast(n float64) func(float64) bool   { return func(v float64) bool { return v >= n } }

// The queue gauges come from the store at scrape time: a paused sender
// with unsent mail shows it, and the gauges fall back to zero once the
// mail is out.
func TestQueueGaugesOnScrape(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	ctx := testContext(t)

	if got := h.scrape(t)[`sender_paused`]; got != 0 {
		t.Errorf("sender_paused = %v before any pause, want 0", got)
	}
	if _, err := h.admin.PauseSending(ctx, &senderv1.PauseSendingRequest{Reason: "metrics test"}); err != nil {
		t.Fatal(err)
	}
	h.waitMetric(ctx, t, `sender_paused`, equals(1))
	// The workers see a pause within a moment; after a restart, before
	// they send anything.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	content := h.putContent(ctx, &senderv1.Content{Subject: "s", TextBody: "t"})
	h.enqueue(ctx, bulkMessage("g:1", "g1@example.com", content, nil), bulkMessage("g:2", "g2@example.com", content, nil),
		txMessage("g:3", "g3@example.com", "confirm"))
	// Paused workers read the entries and hold them: pending, unsent.
	h.waitMetric(ctx, t, `sender_queue_messages{lane="bulk",state="pending"}`, equals(2))
	if err := eventually(ctx, func() bool {
		m := h.scrape(t)
		return m[`sender_queue_messages{lane="tx",state="pending"}`]+m[`sender_queue_messages{lane="tx",state="waiting"}`] == 1
	}); err != nil {
		t.Error("the tx message never showed as waiting or pending")
	}
	h.waitMetric(ctx, t, `sender_queue_oldest_age_seconds{lane="bulk"}`, func(v float64) bool { return v > 0 })
	m := h.scrape(t)
	for series, want := range map[string]float64{
		`sender_queue_messages{lane="bulk",state="waiting"}`: 0,
		`sender_queue_messages{lane="bulk",state="delayed"}`: 0,
		`sender_dead_letters`:                                0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if age := m[`sender_queue_oldest_age_seconds{lane="bulk"}`]; age > waitLimit.Seconds() {
		t.Errorf("oldest bulk age = %vs, more than the test has run", age)
	}

	if _, err := h.admin.ResumeSending(ctx, &senderv1.ResumeSendingRequest{}); err != nil {
		t.Fatal(err)
	}
	h.waitDrained(ctx)
	m = h.scrape(t)
	for _, series := range []string{
		`sender_paused`,
		`sender_queue_messages{lane="bulk",state="pending"}`,
		`sender_queue_messages{lane="tx",state="pending"}`,
		`sender_queue_oldest_age_seconds{lane="bulk"}`,
		`sender_queue_oldest_age_seconds{lane="tx"}`,
	} {
		if got, ok := m[series]; !ok || got != 0 {
			t.Errorf("after resuming, %s = %v (present %v), want 0", series, got, ok)
		}
	}
}

// Every reply to message data is counted by class; a rejected message
// shows in the dead-letter gauge, one the relay keeps deferring in the
// delayed gauge.
func TestSMTPRepliesAndDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var mu sync.Mutex
	dropped := false
	h.mail.SetFault(func(stage mailcatcher.Stage, rcpt string) error {
		if stage != mailcatcher.StageData {
			return nil
		}
		switch {
		case strings.HasPrefix(rcpt, "reject@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(rcpt, "later@"):
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
		case strings.HasPrefix(rcpt, "drop@"):
			mu.Lock()
			defer mu.Unlock()
			if !dropped {
				dropped = true
				return mailcatcher.ErrDisconnect
			}
		}
		return nil
	})
	h.start(map[string]string{"SENDER_MAX_ATTEMPTS": "1000"})
	ctx := testContext(t)

	h.enqueue(ctx, txMessage("r:ok", "ok@example.com", "fine"), txMessage("r:reject", "reject@example.com", "no"),
		txMessage("r:later", "later@example.com", "busy"), txMessage("r:drop", "drop@example.com", "lost"))
	h.waitState(ctx, "r:ok", senderv1.MessageState_MESSAGE_STATE_SENT)
	h.waitState(ctx, "r:reject", senderv1.MessageState_MESSAGE_STATE_DEAD)
	h.waitMetric(ctx, t, `sender_dead_letters`, equals(1))
	h.waitMetric(ctx, t, `sender_smtp_replies_total{class="5xx"}`, equals(1))
	h.waitMetric(ctx, t, `sender_smtp_replies_total{class="4xx"}`, atLeast(2))
	h.waitMetric(ctx, t, `sender_smtp_replies_total{class="none"}`, equals(1))
	h.waitMetric(ctx, t, `sender_smtp_replies_total{class="2xx"}`, atLeast(1))
	// later@ spends most of its time in the delayed set between attempts.
	h.waitMetric(ctx, t, `sender_queue_messages{lane="tx",state="delayed"}`, equals(1))
	if got := h.scrape(t)[`sender_rate_limited_total{limit="global"}`]; got != 0 {
		t.Errorf("sender_rate_limited_total{global} = %v without a limit, want 0", got)
	}

	if _, err := h.admin.RetryDeadLetters(ctx, &senderv1.RetryDeadLettersRequest{}); err != nil {
		t.Fatal(err)
	}
	// The retried message is out of the dead set at once (and back there
	// after its next 550, so only the retry moment is observable).
	h.waitMetric(ctx, t, `sender_smtp_replies_total{class="5xx"}`, equals(2))
}

// Sends over a shared rate limit wait, and each wait is counted with the
// limit's name.
func TestRateLimitedSendsAreCounted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ env, limit string }{
		{"SENDER_RATE_LIMIT", "global"},
		{"SENDER_SMTP_RATE_LIMIT", "relay"},
	} {
		t.Run(tt.limit, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.start(map[string]string{tt.env: "1"})
			ctx := testContext(t)
			var msgs []*senderv1.OutboundMessage
			for i := range 3 {
				msgs = append(msgs, txMessage(fmt.Sprintf("rl:%d", i), fmt.Sprintf("rl%d@example.com", i), "x"))
			}
			h.enqueue(ctx, msgs...)
			for _, m := range msgs {
				h.waitState(ctx, m.GetIdempotencyKey(), senderv1.MessageState_MESSAGE_STATE_SENT)
			}
			got := h.scrape(t)
			if n := got[`sender_rate_limited_total{limit="`+tt.limit+`"}`]; n < 1 {
				t.Errorf("sender_rate_limited_total{limit=%q} = %v after 3 sends at 1/s, want at least 1", tt.limit, n)
			}
			if n := got[`sender_smtp_replies_total{class="2xx"}`]; n != 3 {
				t.Errorf("sender_smtp_replies_total{class=\"2xx\"} = %v, want 3", n)
			}
		})
	}
}
