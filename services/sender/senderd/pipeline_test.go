package senderd_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// TestSharedConnectionDeliversEachMessageOnce: four workers share one SMTP
// connection, so each message's envelope is mostly written behind the
// message before it (pipelined). Every message arrives once, with its own
// envelope sender (VERP names the message) and body; a recipient refused
// at its pipelined RCPT is dead-lettered and costs nobody else anything.
func TestSharedConnectionDeliversEachMessageOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mail.SetFault(func(stage mailcatcher.Stage, arg string) error {
		if stage == mailcatcher.StageRcpt && strings.HasPrefix(arg, "bad") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	proxy := newCountingProxy(t, h.mail.Addr())
	h.start(map[string]string{"SENDER_SMTP_ADDR": proxy.addr, "SENDER_WORKERS": "4",
		"SENDER_SMTP_CONNECTIONS": "1", "SENDER_VERP": "true"})
	ctx := testContext(t)

	const n = 40
	var msgs []*senderv1.OutboundMessage
	for i := range n {
		rcpt := fmt.Sprintf("pipe%d@example.com", i)
		if i%10 == 7 {
			rcpt = fmt.Sprintf("bad%d@example.com", i)
		}
		msgs = append(msgs, txMessage(fmt.Sprintf("pipe:%d", i), rcpt, "body of "+rcpt))
	}
	results := h.enqueue(ctx, msgs...)
	idOf := map[string]string{}
	for i, m := range msgs {
		idOf[m.GetRecipient()] = results[i].GetMessageId()
		want := senderv1.MessageState_MESSAGE_STATE_SENT
		if strings.HasPrefix(m.GetRecipient(), "bad") {
			want = senderv1.MessageState_MESSAGE_STATE_DEAD
		}
		h.waitState(ctx, m.GetIdempotencyKey(), want)
	}
	seen := map[string]int{}
	for _, got := range h.mail.Messages() {
		if len(got.To) != 1 {
			t.Errorf("a message to %v", got.To)
			continue
		}
		rcpt := got.To[0]
		seen[rcpt]++
		if !strings.Contains(got.From, "+"+idOf[rcpt]+"@") {
			t.Errorf("the message to %s has the envelope sender %s, want one naming %s", rcpt, got.From, idOf[rcpt])
		}
		p, err := mailcatcher.Parse(got.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Text, "body of "+rcpt) {
			t.Errorf("the message to %s has the text %q", rcpt, p.Text)
		}
	}
	for _, m := range msgs {
		want := 1
		if strings.HasPrefix(m.GetRecipient(), "bad") {
			want = 0
		}
		if seen[m.GetRecipient()] != want {
			t.Errorf("%s got %d messages, want %d", m.GetRecipient(), seen[m.GetRecipient()], want)
		}
	}
	if got := proxy.accepted.Load(); got != 1 {
		t.Errorf("%d SMTP connections, want 1 (refused recipients keep the session)", got)
	}
}
