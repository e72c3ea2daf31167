package senderd_test

import (
	"fmt"
	"testing"

	"github.com/emersion/go-smtp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// The kill switch survives a restart; a recipient cancelled while paused
// gets nothing of what was queued before; resuming sends the rest.
func TestPauseCancelAndResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	ctx := testContext(t)
	if _, err := h.admin.PauseSending(ctx, &senderv1.PauseSendingRequest{Reason: "relay maintenance"}); err != nil {
		t.Fatal(err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.start(nil) // the pause is read before anything is sent
	content := h.putContent(ctx, &senderv1.Content{Subject: "s", TextBody: "t"})
	h.enqueue(ctx, bulkMessage("p:keep", "keep@example.com", content, nil), bulkMessage("p:gone", "gone@example.com", content, nil))
	// The moment a send would happen: the entries are read by the workers.
	if err := eventually(ctx, func() bool { return h.pendingCount(ctx) == 2 }); err != nil {
		t.Fatal("the workers never read the entries")
	}
	if n := len(h.mail.Messages()); n != 0 {
		t.Fatalf("%d mails sent while paused", n)
	}
	stats := h.stats(ctx)
	if !stats.GetPaused() || stats.GetPauseReason() != "relay maintenance" {
		t.Errorf("stats say paused=%v reason=%q", stats.GetPaused(), stats.GetPauseReason())
	}
	if _, err := h.client.CancelRecipient(ctx, &senderv1.CancelRecipientRequest{Recipient: "Gone@Example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.admin.ResumeSending(ctx, &senderv1.ResumeSendingRequest{}); err != nil {
		t.Fatal(err)
	}
	h.waitState(ctx, "p:keep", senderv1.MessageState_MESSAGE_STATE_SENT)
	h.waitState(ctx, "p:gone", senderv1.MessageState_MESSAGE_STATE_CANCELLED)
	h.waitDrained(ctx)
	if n := len(h.mailsTo("gone@example.com")); n != 0 {
		t.Errorf("the cancelled recipient got %d mails", n)
	}
	if got := h.stats(ctx); got.GetPaused() {
		t.Error("still paused after ResumeSending")
	}

	list, err := h.admin.ListMessages(ctx, &senderv1.ListMessagesRequest{State: senderv1.MessageState_MESSAGE_STATE_CANCELLED})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetMessages()) != 1 || list.GetMessages()[0].GetIdempotencyKey() != "p:gone" {
		t.Errorf("CANCELLED messages = %v, want p:gone", list.GetMessages())
	}
}

func TestListMessagesPages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	ctx := testContext(t)
	for i := range 5 {
		h.enqueue(ctx, txMessage(fmt.Sprint("l:", i), fmt.Sprintf("l%d@example.com", i), "hi"))
		h.waitState(ctx, fmt.Sprint("l:", i), senderv1.MessageState_MESSAGE_STATE_SENT)
	}
	var keys []string
	token := ""
	pages := 0
	for {
		resp, err := h.admin.ListMessages(ctx, &senderv1.ListMessagesRequest{PageSize: 2, PageToken: token, Lane: senderv1.Lane_LANE_TRANSACTIONAL})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range resp.GetMessages() {
			keys = append(keys, m.GetIdempotencyKey())
		}
		if token = resp.GetNextPageToken(); token == "" || pages > 10 {
			break
		}
	}
	if fmt.Sprint(keys) != "[l:4 l:3 l:2 l:1 l:0]" {
		t.Errorf("listed %v in %d pages, want newest first l:4 … l:0", keys, pages)
	}
	byRcpt, err := h.admin.ListMessages(ctx, &senderv1.ListMessagesRequest{Recipient: "l3@EXAMPLE.com"})
	if err != nil || len(byRcpt.GetMessages()) != 1 || byRcpt.GetMessages()[0].GetIdempotencyKey() != "l:3" {
		t.Errorf("by recipient: %v, %v", byRcpt, err)
	}
	for _, bad := range []struct {
		req   *senderv1.ListMessagesRequest
		field string
	}{
		{&senderv1.ListMessagesRequest{PageSize: -1}, "page_size"},
		{&senderv1.ListMessagesRequest{PageToken: "not-a-token"}, "page_token"},
		{&senderv1.ListMessagesRequest{Recipient: "nope"}, "recipient"},
		{&senderv1.ListMessagesRequest{State: 99}, "state"},
	} {
		_, err := h.admin.ListMessages(ctx, bad.req)
		checkViolation(t, err, bad.field)
	}
	_, err = h.admin.PauseSending(ctx, &senderv1.PauseSendingRequest{Reason: "a\nb"})
	checkViolation(t, err, "reason")
	_, err = h.client.CancelRecipient(ctx, &senderv1.CancelRecipientRequest{Recipient: "not an address"})
	checkViolation(t, err, "recipient")
}

func TestRetryDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var f faults
	h.mail.SetFault(f.failFirst(mailcatcher.StageRcpt, 1, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}))
	h.start(nil)
	ctx := testContext(t)
	h.enqueue(ctx, txMessage("dl:1", "dl@example.com", "hi"))
	h.waitState(ctx, "dl:1", senderv1.MessageState_MESSAGE_STATE_DEAD)
	resp, err := h.admin.RetryDeadLetters(ctx, &senderv1.RetryDeadLettersRequest{})
	if err != nil || resp.GetRetriedCount() != 1 {
		t.Fatalf("RetryDeadLetters = %v, %v; want 1", resp, err)
	}
	m := h.waitState(ctx, "dl:1", senderv1.MessageState_MESSAGE_STATE_SENT)
	if m.GetAttemptCount() != 1 {
		t.Errorf("attempt_count = %d after the retry, want 1 (a fresh count)", m.GetAttemptCount())
	}
	if n := len(h.mailsTo("dl@example.com")); n != 1 {
		t.Errorf("got %d mails, want 1", n)
	}
	again, err := h.admin.RetryDeadLetters(ctx, &senderv1.RetryDeadLettersRequest{})
	if err != nil || again.GetRetriedCount() != 0 {
		t.Errorf("second RetryDeadLetters = %v, %v; want 0", again, err)
	}
}

func checkViolation(t *testing.T, err error, field string) {
	t.Helper()
	got := grpcerr.FieldViolations(err)
	if _, ok := got[field]; status.Code(err) != codes.InvalidArgument || len(got) != 1 || !ok {
		t.Errorf("err = %v, want InvalidArgument with one violation of %s", err, field)
	}
}
