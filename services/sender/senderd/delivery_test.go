package senderd_test

import (
	"fmt"
	"io"
	"net/http"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

func TestDeliversBothLanesWithHeadersAndVariables(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	ctx := testContext(t)

	content := h.putContent(ctx, &senderv1.Content{
		Subject:  "Today's papers for {{name}}",
		HtmlBody: `<p>Hello {{name}}</p><a href="{{unsubscribe_url}}">Unsubscribe</a>`,
		TextBody: "Hello {{name}}\nUnsubscribe: {{unsubscribe_url}}\n",
	})
	const (
		hostile  = `<script>alert(1)</script> & co`
		unsubURL = "https://paperroute.example/unsubscribe?token=abc.def"
		devURL   = "http://127.0.0.1:8081/unsubscribe?token=dev"
	)
	digest := bulkMessage("digest:s1:2026-06-12", "Reader@Example.COM", content,
		map[string]string{"name": hostile, "unsubscribe_url": unsubURL})
	digest.ListUnsubscribeUrl = unsubURL
	htmlOnly := &senderv1.OutboundMessage{
		IdempotencyKey: "digest:s3:2026-06-12", Recipient: "dev@example.net", Lane: senderv1.Lane_LANE_BULK,
		Content:            &senderv1.Content{Subject: "HTML only", HtmlBody: "<p>only html</p>"},
		ListUnsubscribeUrl: devURL,
	}
	confirm := txMessage("confirm:s2", "new@example.org", "Confirm: {{link}}")
	confirm.Variables = map[string]string{"link": "https://paperroute.example/confirm?token=t"}
	results := h.enqueue(ctx, digest, confirm, htmlOnly)
	for _, r := range results {
		if r.GetDuplicate() {
			t.Errorf("first enqueue of %q reported duplicate", r.GetIdempotencyKey())
		}
	}

	sent := h.waitState(ctx, "digest:s1:2026-06-12", senderv1.MessageState_MESSAGE_STATE_SENT)
	h.waitState(ctx, "confirm:s2", senderv1.MessageState_MESSAGE_STATE_SENT)
	h.waitState(ctx, "digest:s3:2026-06-12", senderv1.MessageState_MESSAGE_STATE_SENT)

	t.Run("bulk digest", func(t *testing.T) {
		msgs := h.mailsTo("Reader@example.com")
		if len(msgs) != 1 {
			t.Fatalf("got %d mails to Reader@example.com, want 1", len(msgs))
		}
		p := parseMail(t, msgs[0].Data)
		from, err := netmail.ParseAddress(p.Header.Get("From"))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{
			"From":                     from.String(),
			"To":                       p.Header.Get("To"),
			"Subject":                  p.Subject,
			"Message-ID":               p.Header.Get("Message-ID"),
			"List-Unsubscribe":         p.Header.Get("List-Unsubscribe"),
			"List-Unsubscribe-Post":    p.Header.Get("List-Unsubscribe-Post"),
			"Precedence":               p.Header.Get("Precedence"),
			"X-Auto-Response-Suppress": p.Header.Get("X-Auto-Response-Suppress"),
			"parts":                    strings.Join(p.PartOrder, ","),
			"envelope from":            msgs[0].From,
		}
		want := map[string]string{
			"From":                     `"paperroute" <digest@paperroute.localhost>`,
			"To":                       "<Reader@example.com>",
			"Subject":                  "Today's papers for " + hostile,
			"Message-ID":               "<" + results[0].GetMessageId() + "@paperroute.localhost>",
			"List-Unsubscribe":         "<" + unsubURL + ">",
			"List-Unsubscribe-Post":    "List-Unsubscribe=One-Click",
			"Precedence":               "bulk",
			"X-Auto-Response-Suppress": "All",
			"parts":                    "text/plain,text/html",
			"envelope from":            "digest@paperroute.localhost",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
		if want := "Hello " + hostile + "\nUnsubscribe: " + unsubURL; !strings.Contains(normalizeNewlines(p.Text), want) {
			t.Errorf("text part = %q, want it to contain %q", p.Text, want)
		}
		wantHTML := `<p>Hello &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p><a href="` +
			strings.ReplaceAll(unsubURL, "&", "&amp;") + `">Unsubscribe</a>`
		if !strings.Contains(p.HTML, wantHTML) {
			t.Errorf("HTML part = %q, want it to contain %q", p.HTML, wantHTML)
		}
		if strings.Contains(p.HTML, "<script>") {
			t.Error("HTML part holds an unescaped <script>")
		}
	})

	t.Run("transactional confirmation", func(t *testing.T) {
		msgs := h.mailsTo("new@example.org")
		if len(msgs) != 1 {
			t.Fatalf("got %d mails, want 1", len(msgs))
		}
		p := parseMail(t, msgs[0].Data)
		got := map[string]string{
			"Subject":          p.Subject,
			"Precedence":       p.Header.Get("Precedence"),
			"List-Unsubscribe": p.Header.Get("List-Unsubscribe"),
			"parts":            strings.Join(p.PartOrder, ","),
			"text":             strings.TrimSpace(normalizeNewlines(p.Text)),
		}
		want := map[string]string{
			"Subject":          "Confirm your subscription",
			"Precedence":       "",
			"List-Unsubscribe": "",
			"parts":            "text/plain",
			"text":             "Confirm: https://paperroute.example/confirm?token=t",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("confirmation (-want +got):\n%s", diff)
		}
	})

	t.Run("html only with a loopback http unsubscribe URL", func(t *testing.T) {
		msgs := h.mailsTo("dev@example.net")
		if len(msgs) != 1 {
			t.Fatalf("got %d mails, want 1", len(msgs))
		}
		p := parseMail(t, msgs[0].Data)
		got := map[string]string{
			"parts":                 strings.Join(p.PartOrder, ","),
			"List-Unsubscribe":      p.Header.Get("List-Unsubscribe"),
			"List-Unsubscribe-Post": p.Header.Get("List-Unsubscribe-Post"),
		}
		want := map[string]string{
			"parts":                 "text/html",
			"List-Unsubscribe":      "<" + devURL + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("status", func(t *testing.T) {
		resp, err := h.admin.GetMessage(ctx, &senderv1.GetMessageRequest{MessageId: results[0].GetMessageId()})
		if err != nil {
			t.Fatal(err)
		}
		byAdmin := resp.GetMessage()
		if byAdmin.GetId() != sent.GetId() || byAdmin.GetState() != senderv1.MessageState_MESSAGE_STATE_SENT {
			t.Errorf("GetMessage by id = %v, want the SENT message %s", byAdmin, sent.GetId())
		}
		got := map[string]any{
			"recipient":  sent.GetRecipient(),
			"lane":       sent.GetLane(),
			"attempts":   sent.GetAttemptCount(),
			"content":    sent.GetContentId(),
			"last_error": sent.GetLastError(),
			"send_time":  sent.GetSendTime() != nil,
			"ordered":    !sent.GetSendTime().AsTime().Before(sent.GetCreateTime().AsTime()),
		}
		want := map[string]any{
			"recipient": "Reader@example.com", "lane": senderv1.Lane_LANE_BULK, "attempts": int32(1),
			"content": content, "last_error": "", "send_time": true, "ordered": true,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("message status (-want +got):\n%s", diff)
		}
		if n := h.pendingCount(ctx); n != 0 {
			t.Errorf("%d entries still pending after delivery, want 0 (all acknowledged)", n)
		}
		stats := h.stats(ctx)
		gotStats := map[senderv1.Lane][4]int64{}
		for _, l := range stats.GetLanes() {
			gotStats[l.GetLane()] = [4]int64{l.GetWaitingCount(), l.GetPendingCount(), l.GetSentCount(), l.GetDeadCount()}
		}
		wantStats := map[senderv1.Lane][4]int64{
			senderv1.Lane_LANE_TRANSACTIONAL: {0, 0, 1, 0},
			senderv1.Lane_LANE_BULK:          {0, 0, 2, 0},
		}
		if diff := cmp.Diff(wantStats, gotStats); diff != "" {
			t.Errorf("stats [waiting pending sent dead] (-want +got):\n%s", diff)
		}
	})

	t.Run("metrics and health", func(t *testing.T) {
		body := httpGet(t, "http://"+h.httpAddr+"/metrics")
		for _, want := range []string{
			`sender_messages_sent_total{lane="bulk"} 2`,
			`sender_messages_sent_total{lane="tx"} 1`,
			`sender_smtp_send_duration_seconds_count 3`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if got := httpGet(t, "http://"+h.httpAddr+"/healthz"); got != "ok\n" {
			t.Errorf("/healthz = %q, want ok", got)
		}
	})
}

func TestSameKeyNeverMailsTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	ctx := testContext(t)

	t.Run("twice in a row", func(t *testing.T) {
		first := h.enqueue(ctx, txMessage("k:seq", "seq@example.com", "one"))
		second := h.enqueue(ctx, txMessage("k:seq", "seq@example.com", "two"))
		if first[0].GetDuplicate() || !second[0].GetDuplicate() {
			t.Errorf("duplicate flags = %v, %v; want false, true", first[0].GetDuplicate(), second[0].GetDuplicate())
		}
		if first[0].GetMessageId() != second[0].GetMessageId() {
			t.Errorf("message ids differ: %s, %s", first[0].GetMessageId(), second[0].GetMessageId())
		}
	})
	t.Run("twice in one batch", func(t *testing.T) {
		res := h.enqueue(ctx, txMessage("k:batch", "batch@example.com", "one"), txMessage("k:batch", "batch@example.com", "two"))
		if got := []bool{res[0].GetDuplicate(), res[1].GetDuplicate()}; !cmp.Equal(got, []bool{false, true}) {
			t.Errorf("duplicate flags = %v, want [false true]", got)
		}
	})
	t.Run("concurrently", func(t *testing.T) {
		const callers = 16
		var wg sync.WaitGroup
		dups := make([]bool, callers)
		for i := range callers {
			wg.Go(func() {
				resp, err := h.client.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{
					txMessage("k:race", "race@example.com", fmt.Sprintf("caller %d", i)),
				}})
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				dups[i] = resp.GetResults()[0].GetDuplicate()
			})
		}
		wg.Wait()
		created := 0
		for _, d := range dups {
			if !d {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d callers were told they created the message, want exactly 1", created)
		}
	})

	h.waitDrained(ctx)
	for _, rcpt := range []string{"seq@example.com", "batch@example.com", "race@example.com"} {
		if n := len(h.mailsTo(rcpt)); n != 1 {
			t.Errorf("%s got %d mails, want 1", rcpt, n)
		}
	}
	// The first content wins: a duplicate never replaces what was queued.
	p := parseMail(t, h.mailsTo("seq@example.com")[0].Data)
	if strings.TrimSpace(p.Text) != "one" {
		t.Errorf("text = %q, want the first enqueue's %q", p.Text, "one")
	}
}

func TestTransactionalLaneOvertakesBulkBacklog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	var once sync.Once
	h.mail.SetFault(func(stage mailcatcher.Stage, _ string) error {
		if stage == mailcatcher.StageMail {
			once.Do(func() { entered <- struct{}{}; <-gate })
		}
		return nil
	})
	// One worker and one partition make the order observable: at most
	// 4 slots (entries read ahead) can be ahead of the tx message.
	h.start(map[string]string{"SENDER_WORKERS": "1", "SENDER_PARTITIONS": "1"})
	ctx := testContext(t)

	content := h.putContent(ctx, &senderv1.Content{Subject: "digest", TextBody: "papers"})
	const bulk = 12
	var msgs []*senderv1.OutboundMessage
	for i := range bulk {
		msgs = append(msgs, bulkMessage(fmt.Sprintf("bulk:%d", i), fmt.Sprintf("bulk%d@example.com", i), content, nil))
	}
	h.enqueue(ctx, msgs...)
	select {
	case <-entered: // the worker is stuck in the first bulk send
	case <-ctx.Done():
		t.Fatal("the first bulk message was never sent")
	}
	h.enqueue(ctx, txMessage("tx:urgent", "urgent@example.com", "confirm"))
	close(gate)
	h.waitDrained(ctx)

	order := h.mail.Messages()
	if len(order) != bulk+1 {
		t.Fatalf("got %d mails, want %d", len(order), bulk+1)
	}
	pos := -1
	for i, m := range order {
		if mailcatcher.To("urgent@example.com")(m) {
			pos = i
		}
	}
	// Ahead of it at most: the bulk message in flight and the 3 others the
	// worker had in hand (4 slots for 1 worker).
	if pos < 0 || pos > 4 {
		t.Errorf("transactional mail was delivered as number %d of %d, want within the first 5", pos+1, len(order))
	}
}

func TestTemporaryFailuresAreRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		stage        mailcatcher.Stage
		failures     int
		err          error
		wantError    string // in last_error
		wantAttempts int32
	}{
		{"4xx at RCPT", mailcatcher.StageRcpt, 2, &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "try later"}, "450", 3},
		{"4xx after DATA", mailcatcher.StageData, 1, &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "full"}, "452", 2},
		{"disconnect mid-DATA", mailcatcher.StageData, 1, mailcatcher.ErrDisconnect, "", 2},
		{"disconnect at MAIL", mailcatcher.StageMail, 1, mailcatcher.ErrDisconnect, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			var f faults
			h.mail.SetFault(f.failFirst(tt.stage, tt.failures, tt.err))
			h.start(nil)
			ctx := testContext(t)

			h.enqueue(ctx, txMessage("retry:1", "retry@example.com", "hello"))
			m := h.waitState(ctx, "retry:1", senderv1.MessageState_MESSAGE_STATE_SENT)
			if m.GetAttemptCount() != tt.wantAttempts {
				t.Errorf("attempt_count = %d, want %d", m.GetAttemptCount(), tt.wantAttempts)
			}
			if m.GetLastError() == "" || !strings.Contains(m.GetLastError(), tt.wantError) {
				t.Errorf("last_error = %q, want it to mention %q", m.GetLastError(), tt.wantError)
			}
			// Each retry waits SENDER_RETRY_AFTER after the failure (the
			// timestamps have millisecond precision).
			minDelay := time.Duration(tt.failures)*retryAfter - 2*time.Millisecond
			if took := m.GetSendTime().AsTime().Sub(m.GetCreateTime().AsTime()); took < minDelay {
				t.Errorf("delivered %v after enqueue, want at least %v (%d retry delays)", took, minDelay, tt.failures)
			}
			h.waitDrained(ctx)
			if n := len(h.mailsTo("retry@example.com")); n != 1 {
				t.Errorf("got %d mails, want 1", n)
			}
			if body := httpGet(t, "http://"+h.httpAddr+"/metrics"); !strings.Contains(body, fmt.Sprintf(`sender_messages_retried_total{lane="tx"} %d`, tt.wantAttempts-1)) {
				t.Errorf("/metrics does not count %d retries", tt.wantAttempts-1)
			}
		})
	}
}

func TestPermanentFailuresAreDeadLettered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		env          map[string]string
		err          error
		stage        mailcatcher.Stage
		wantAttempts int32
		wantError    string
	}{
		{"5xx at RCPT", nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, mailcatcher.StageRcpt, 1, "550"},
		{"5xx after DATA", nil, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}, mailcatcher.StageData, 1, "554"},
		{"max attempts of 4xx", map[string]string{"SENDER_MAX_ATTEMPTS": "3"}, &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "later"}, mailcatcher.StageRcpt, 3, "gave up after 3 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			var f faults
			h.mail.SetFault(f.failFirst(tt.stage, 1000, tt.err))
			h.start(tt.env)
			ctx := testContext(t)

			content := h.putContent(ctx, &senderv1.Content{Subject: "s", TextBody: "t"})
			h.enqueue(ctx, bulkMessage("dead:1", "gone@example.com", content, nil))
			m := h.waitState(ctx, "dead:1", senderv1.MessageState_MESSAGE_STATE_DEAD)
			if m.GetAttemptCount() != tt.wantAttempts || !strings.Contains(m.GetLastError(), tt.wantError) {
				t.Errorf("attempts, last_error = %d, %q; want %d and an error mentioning %q", m.GetAttemptCount(), m.GetLastError(), tt.wantAttempts, tt.wantError)
			}
			if m.GetSendTime() != nil {
				t.Errorf("send_time = %v, want unset", m.GetSendTime())
			}
			// Acknowledged, so it can never be claimed and retried again.
			if n := h.pendingCount(ctx); n != 0 {
				t.Errorf("%d entries pending, want 0", n)
			}
			if got := f.count(tt.stage); got != int(tt.wantAttempts) {
				t.Errorf("the relay saw %d %s commands, want %d", got, tt.stage, tt.wantAttempts)
			}
			stats := h.stats(ctx)
			for _, l := range stats.GetLanes() {
				want := int64(0)
				if l.GetLane() == senderv1.Lane_LANE_BULK {
					want = 1
				}
				if l.GetDeadCount() != want || l.GetSentCount() != 0 {
					t.Errorf("%v: dead=%d sent=%d, want dead=%d sent=0", l.GetLane(), l.GetDeadCount(), l.GetSentCount(), want)
				}
			}
			if len(h.mail.Messages()) != 0 {
				t.Error("a rejected message was caught")
			}
		})
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
