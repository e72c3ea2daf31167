package grpcapi_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/grpcerr"
)

// valid returns a message that passes validation; tests break one field.
func valid() *senderv1.OutboundMessage {
	return &senderv1.OutboundMessage{
		IdempotencyKey: "confirm:123",
		Recipient:      "reader@example.com",
		Lane:           senderv1.Lane_LANE_TRANSACTIONAL,
		Content:        &senderv1.Content{Subject: "Confirm, {{name}}", TextBody: "Hi {{name}}", HtmlBody: "<p>{{name}}</p>"},
		Variables:      map[string]string{"name": "Ada"},
	}
}

func with(f func(m *senderv1.OutboundMessage)) *senderv1.OutboundMessage {
	m := valid()
	f(m)
	return m
}

func TestEnqueueRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	tooMany := make([]*senderv1.OutboundMessage, 1001)
	for i := range tooMany {
		tooMany[i] = with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = fmt.Sprint("k", i) })
	}
	manyVars := map[string]string{"name": "x"}
	for i := range 32 {
		manyVars[fmt.Sprintf("v%d", i)] = "x"
	}
	tests := []struct {
		name       string
		messages   []*senderv1.OutboundMessage
		wantFields []string
	}{
		{"no messages", nil, []string{"messages"}},
		{"more than 1000 messages", tooMany, []string{"messages"}},
		{"empty key", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = "" })}, []string{"messages[0].idempotency_key"}},
		{"key with a space", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = "a b" })}, []string{"messages[0].idempotency_key"}},
		{"key with CRLF", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = "a\r\nb" })}, []string{"messages[0].idempotency_key"}},
		{"key of 201 bytes", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = strings.Repeat("k", 201) })}, []string{"messages[0].idempotency_key"}},
		{"non-ASCII key", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = "clé" })}, []string{"messages[0].idempotency_key"}},
		{"empty recipient", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Recipient = "" })}, []string{"messages[0].recipient"}},
		{"recipient with a display name", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Recipient = "Ada <ada@example.com>" })}, []string{"messages[0].recipient"}},
		{"recipient header injection", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Recipient = "ada@example.com\r\nBcc: victim@example.com" })}, []string{"messages[0].recipient"}},
		{"recipient list", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Recipient = "a@example.com,b@example.com" })}, []string{"messages[0].recipient"}},
		{"recipient of 255 bytes", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) {
			m.Recipient = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
		})}, []string{"messages[0].recipient"}},
		{"lane unspecified", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Lane = senderv1.Lane_LANE_UNSPECIFIED })}, []string{"messages[0].lane"}},
		{"unknown lane number", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Lane = 7 })}, []string{"messages[0].lane"}},
		{"both content and content_id", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ContentId = strings.Repeat("a", 64) })}, []string{"messages[0].content_id"}},
		{"neither content nor content_id", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content = nil })}, []string{"messages[0].content_id"}},
		{"malformed content_id", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content, m.ContentId = nil, "../../etc/passwd" })}, []string{"messages[0].content_id"}},
		{"unknown content_id", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content, m.ContentId = nil, strings.Repeat("a", 64) })}, []string{"messages[0].content_id"}},
		{"subject with CRLF", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content.Subject = "Hi\r\nBcc: victim@example.com" })}, []string{"messages[0].content.subject"}},
		{"empty subject", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content.Subject = "" })}, []string{"messages[0].content.subject"}},
		{"subject of 999 bytes", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content.Subject = strings.Repeat("s", 999) })}, []string{"messages[0].content.subject"}},
		{"no body", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content.HtmlBody, m.Content.TextBody = "", "" })}, []string{"messages[0].content.text_body"}},
		{"html body over 1 MiB", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content.HtmlBody = strings.Repeat("h", 1<<20+1) })}, []string{"messages[0].content.html_body"}},
		{"text body with NUL", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Content.TextBody = "a\x00b" })}, []string{"messages[0].content.text_body"}},
		{"missing variable", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Variables = nil })}, []string{"messages[0].variables"}},
		{"bad variable name", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Variables["Bad-Name\r\n"] = "x" })}, []string{"messages[0].variables"}},
		{"variable value with CRLF", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Variables["name"] = "Ada\r\nBcc: victim@example.com" })}, []string{"messages[0].variables"}},
		{"variable value with a C1 control", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Variables["name"] = "Ada\u0085" })}, []string{"messages[0].variables"}},
		{"variable value over 2048 bytes", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Variables["name"] = strings.Repeat("v", 2049) })}, []string{"messages[0].variables"}},
		{"33 variables", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.Variables = manyVars })}, []string{"messages[0].variables"}},
		{"unsubscribe URL over http to a public host", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "http://paperroute.example/u" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL mailto", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "mailto:u@example.com" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL relative", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "/unsubscribe" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL with CRLF", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "https://x.example/u\r\nBcc: v@example.com" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL with encoded CRLF", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "https://x.example/u?t=%0d%0aBcc:x" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL breaking out of <>", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) {
			m.ListUnsubscribeUrl = "https://x.example/u>, <mailto:evil@example.com"
		})}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL with a space", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "https://x.example/a b" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL with credentials", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "https://user:pw@x.example/u" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL too long", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) {
			m.ListUnsubscribeUrl = "https://x.example/" + strings.Repeat("a", 2048)
		})}, []string{"messages[0].list_unsubscribe_url"}},
		{"unsubscribe URL not canonical", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) { m.ListUnsubscribeUrl = "HTTPS://x.example/u" })}, []string{"messages[0].list_unsubscribe_url"}},
		{"one bad message spoils the batch", []*senderv1.OutboundMessage{valid(), with(func(m *senderv1.OutboundMessage) { m.IdempotencyKey = "other"; m.Recipient = "nope" })}, []string{"messages[1].recipient"}},
		{"every problem reported", []*senderv1.OutboundMessage{with(func(m *senderv1.OutboundMessage) {
			m.IdempotencyKey, m.Recipient, m.Lane, m.ListUnsubscribeUrl = "", "x", 0, "ftp://x"
		})}, []string{"messages[0].idempotency_key", "messages[0].recipient", "messages[0].lane", "messages[0].list_unsubscribe_url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.service.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: tt.messages})
			checkViolations(t, err, tt.wantFields)
			checkNothingWritten(t, ctx, e)
		})
	}
}

func TestEnqueueBoundsTheReportedViolations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	batch := make([]*senderv1.OutboundMessage, 1000)
	for i := range batch {
		batch[i] = with(func(m *senderv1.OutboundMessage) {
			m.IdempotencyKey = fmt.Sprint("k", i)
			m.Recipient = strings.Repeat("x", 300)
		})
	}
	_, err := e.service.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: batch})
	want := []string{"messages"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("messages[%d].recipient", i))
	}
	checkViolations(t, err, want)
	if got := grpcerr.FieldViolations(err)["messages"]; got != "980 more problems not listed" {
		t.Errorf("summary violation = %q", got)
	}
	checkNothingWritten(t, ctx, e)
}

func TestPutContentRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	tests := []struct {
		name       string
		content    *senderv1.Content
		wantFields []string
	}{
		{"no content", nil, []string{"content.subject", "content.text_body"}},
		{"subject with LF", &senderv1.Content{Subject: "a\nb", TextBody: "t"}, []string{"content.subject"}},
		{"subject with a tab", &senderv1.Content{Subject: "a\tb", TextBody: "t"}, []string{"content.subject"}},
		{"subject too long", &senderv1.Content{Subject: strings.Repeat("é", 500), TextBody: "t"}, []string{"content.subject"}},
		{"no bodies", &senderv1.Content{Subject: "s"}, []string{"content.text_body"}},
		{"text body over 1 MiB", &senderv1.Content{Subject: "s", TextBody: strings.Repeat("t", 1<<20+1)}, []string{"content.text_body"}},
		{"both bodies over 1 MiB", &senderv1.Content{Subject: "s", TextBody: strings.Repeat("t", 1<<20+1), HtmlBody: strings.Repeat("h", 1<<20+1)}, []string{"content.html_body", "content.text_body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.service.PutContent(ctx, &senderv1.PutContentRequest{Content: tt.content})
			checkViolations(t, err, tt.wantFields)
			checkNothingWritten(t, ctx, e)
		})
	}
}

func TestGetMessageRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	tests := []struct {
		name      string
		req       *senderv1.GetMessageRequest
		wantField string
	}{
		{"neither", &senderv1.GetMessageRequest{}, "message_id"},
		{"both", &senderv1.GetMessageRequest{MessageId: strings.Repeat("a", 32), IdempotencyKey: "k"}, "message_id"},
		{"id too short", &senderv1.GetMessageRequest{MessageId: "abc"}, "message_id"},
		{"id upper-case", &senderv1.GetMessageRequest{MessageId: strings.Repeat("A", 32)}, "message_id"},
		{"id with a key pattern", &senderv1.GetMessageRequest{MessageId: "*"}, "message_id"},
		{"key with spaces", &senderv1.GetMessageRequest{IdempotencyKey: "a b"}, "idempotency_key"},
		{"key too long", &senderv1.GetMessageRequest{IdempotencyKey: strings.Repeat("k", 201)}, "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.admin.GetMessage(ctx, tt.req)
			checkViolations(t, err, []string{tt.wantField})
		})
	}
}

func checkViolations(t *testing.T, err error, wantFields []string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	var got []string
	for field, desc := range grpcerr.FieldViolations(err) {
		got = append(got, field)
		if desc == "" {
			t.Errorf("violation of %s has no description", field)
		}
		if strings.ContainsAny(desc, "\r\n") {
			t.Errorf("violation of %s echoes a line break: %q", field, desc)
		}
	}
	sort.Strings(got)
	want := append([]string(nil), wantFields...)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violated fields (-want +got):\n%s", diff)
	}
	if msg := status.Convert(err).Message(); len(msg) > 16<<10 {
		t.Errorf("status message is %d bytes: a hostile input is echoed", len(msg))
	}
}

// checkNothingWritten asserts that no record, content or stream entry
// exists.
func checkNothingWritten(t *testing.T, ctx context.Context, e *env) {
	t.Helper()
	for _, pattern := range []string{"snd:msg:*", "snd:content:*", "snd:stats:*"} {
		if keys := e.rdb.Keys(ctx, pattern).Val(); len(keys) != 0 {
			t.Errorf("keys %v were written", keys)
		}
	}
	streams := e.rdb.Keys(ctx, "snd:q:*").Val()
	if len(streams) == 0 {
		t.Error("no streams: the groups were not created")
	}
	for _, s := range streams {
		if n := e.rdb.XLen(ctx, s).Val(); n != 0 {
			t.Errorf("stream %s has %d entries", s, n)
		}
	}
}
