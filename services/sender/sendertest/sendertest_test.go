package sendertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/sendertest"
)

const serviceToken = "a-service-token"

func client(t *testing.T, addr, token string) senderv1.SenderServiceClient {
	t.Helper()
	conn, err := grpcclient.New(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return senderv1.NewSenderServiceClient(conn)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestQueuesAndRendersLikeTheSender(t *testing.T) {
	t.Parallel()
	f := sendertest.Start(t, serviceToken)
	c := client(t, f.Addr(), serviceToken)
	ctx := testContext(t)

	content := &senderv1.Content{Subject: "Papers for {{name}}", HtmlBody: "<p>Hi {{name}}</p>", TextBody: "Hi {{name}}"}
	put, err := c.PutContent(ctx, &senderv1.PutContentRequest{Content: content})
	if err != nil {
		t.Fatal(err)
	}
	want := queue.Content{Subject: content.Subject, HTML: content.HtmlBody, Text: content.TextBody}.ID()
	if put.GetContentId() != want {
		t.Errorf("content id = %q, want the sender's %q", put.GetContentId(), want)
	}
	msgs := []*senderv1.OutboundMessage{
		{IdempotencyKey: "k1", Recipient: "Ada@Example.COM", Lane: senderv1.Lane_LANE_BULK, ContentId: put.GetContentId(),
			Variables: map[string]string{"name": "<Ada>"}, ListUnsubscribeUrl: "https://x.example/u"},
		{IdempotencyKey: "k2", Recipient: "bob@example.com", Lane: senderv1.Lane_LANE_TRANSACTIONAL,
			Content: &senderv1.Content{Subject: "Confirm", TextBody: "Click {{link}}"}, Variables: map[string]string{"link": "https://x.example/c"}},
	}
	resp, err := c.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetResults()[0].GetMessageId(); got != queue.MessageID("k1") {
		t.Errorf("message id = %q, want the sender's %q", got, queue.MessageID("k1"))
	}
	// The same key again is a duplicate and queues nothing.
	again, err := c.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: msgs[:1]})
	if err != nil || !again.GetResults()[0].GetDuplicate() {
		t.Fatalf("second Enqueue = %v, %v; want a duplicate", again, err)
	}

	got := f.Mails()
	wantMails := []sendertest.Mail{
		{IdempotencyKey: "k1", MessageID: queue.MessageID("k1"), To: "Ada@example.com", Lane: senderv1.Lane_LANE_BULK,
			Subject: "Papers for <Ada>", HTML: "<p>Hi &lt;Ada&gt;</p>", Text: "Hi <Ada>", ContentID: put.GetContentId(),
			ListUnsubscribeURL: "https://x.example/u", Variables: map[string]string{"name": "<Ada>"}},
		{IdempotencyKey: "k2", MessageID: queue.MessageID("k2"), To: "bob@example.com", Lane: senderv1.Lane_LANE_TRANSACTIONAL,
			Subject: "Confirm", Text: "Click https://x.example/c",
			ContentID: queue.Content{Subject: "Confirm", Text: "Click {{link}}"}.ID(), Variables: map[string]string{"link": "https://x.example/c"}},
	}
	if diff := cmp.Diff(wantMails, got); diff != "" {
		t.Errorf("Mails (-want +got):\n%s", diff)
	}
	if n := len(f.Queued()); n != 2 {
		t.Errorf("Queued has %d messages, want 2", n)
	}
	if n := len(f.Puts()); n != 1 {
		t.Errorf("Puts has %d contents, want 1", n)
	}
	if n := f.Calls(); n != 2 {
		t.Errorf("Calls = %d, want 2", n)
	}
	m, err := client(t, f.Addr(), sendertest.AdminToken).GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: "k2"})
	if err != nil || m.GetMessage().GetState() != senderv1.MessageState_MESSAGE_STATE_QUEUED {
		t.Errorf("GetMessage = %v, %v; want a QUEUED message", m, err)
	}
}

func TestValidatesLikeTheSender(t *testing.T) {
	t.Parallel()
	f := sendertest.Start(t, serviceToken)
	c := client(t, f.Addr(), serviceToken)
	ctx := testContext(t)
	_, err := c.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{
		{IdempotencyKey: "ok", Recipient: "a@example.com", Lane: senderv1.Lane_LANE_TRANSACTIONAL,
			Content: &senderv1.Content{Subject: "s", TextBody: "t"}},
		{IdempotencyKey: "bad", Recipient: "not an address", Lane: senderv1.Lane_LANE_BULK,
			Content: &senderv1.Content{Subject: "s", TextBody: "{{name}}"}},
		{IdempotencyKey: "unknown", Recipient: "b@example.com", Lane: senderv1.Lane_LANE_BULK, ContentId: queue.Content{Subject: "x", Text: "y"}.ID()},
	}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	var fields []string
	for field := range grpcerr.FieldViolations(err) {
		fields = append(fields, field)
	}
	want := []string{"messages[1].list_unsubscribe_url", "messages[1].recipient", "messages[1].variables", "messages[2].content_id", "messages[2].list_unsubscribe_url"}
	if diff := cmp.Diff(want, fields, cmpSorted); diff != "" {
		t.Errorf("violated fields (-want +got):\n%s", diff)
	}
	if n := len(f.Mails()); n != 0 {
		t.Errorf("%d mails queued from a refused batch, want 0", n)
	}
	_, err = c.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{Subject: "a\nb"}})
	if got := grpcerr.FieldViolations(err); len(got) != 2 || got["content.subject"] == "" || got["content.text_body"] == "" {
		t.Errorf("PutContent violations = %v, want content.subject and content.text_body", got)
	}
}

func TestChecksTheSendersPolicy(t *testing.T) {
	t.Parallel()
	f := sendertest.Start(t, serviceToken)
	ctx := testContext(t)
	req := &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{{IdempotencyKey: "k", Recipient: "a@example.com",
		Lane: senderv1.Lane_LANE_TRANSACTIONAL, Content: &senderv1.Content{Subject: "s", TextBody: "t"}}}}
	if _, err := client(t, f.Addr(), "wrong-token").Enqueue(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Enqueue with a wrong token: %v, want Unauthenticated", err)
	}
	if _, err := client(t, f.Addr(), sendertest.AdminToken).Enqueue(ctx, req); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Enqueue with the operator token: %v, want PermissionDenied (Enqueue is INTERNAL)", err)
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	f := sendertest.New()
	ctx := testContext(t)
	req := func(key string) *senderv1.EnqueueRequest {
		return &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{{IdempotencyKey: key, Recipient: "a@example.com",
			Lane: senderv1.Lane_LANE_TRANSACTIONAL, Content: &senderv1.Content{Subject: "s", TextBody: "t"}}}}
	}
	f.SetUnavailable(true)
	if _, err := f.Enqueue(ctx, req("a")); status.Code(err) != codes.Unavailable {
		t.Errorf("unavailable: %v", err)
	}
	f.SetUnavailable(false)
	f.Reject(func(m *senderv1.OutboundMessage) bool { return m.GetIdempotencyKey() == "b" })
	if _, err := f.Enqueue(ctx, req("b")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("rejected: %v", err)
	}
	f.Reject(nil)
	f.FailPutContent(status.Error(codes.Internal, "boom"))
	if _, err := f.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{Subject: "s", TextBody: "t"}}); status.Code(err) != codes.Internal {
		t.Errorf("FailPutContent: %v", err)
	}
	if _, err := f.Enqueue(ctx, req("c")); err != nil {
		t.Fatal(err)
	}
	if got := f.MailsTo("a@example.com"); len(got) != 1 || got[0].IdempotencyKey != "c" {
		t.Errorf("MailsTo = %v, want only c", got)
	}
	started := f.BlockEnqueue()
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := f.Enqueue(bctx, req("d")); done <- err }()
	<-started
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("blocked Enqueue = %v, want Canceled", err)
	}
	if n := f.Calls(); n != 4 {
		t.Errorf("Calls = %d, want 4", n)
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })
