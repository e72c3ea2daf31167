package senderd_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"
)

// TestSendJoinsTheEnqueueTrace checks that one trace runs from the caller
// of Enqueue (a digest run, here a test span) over gRPC into the queue and
// out to the SMTP send: the send span is a child of the Enqueue server
// span, which is a child of the caller's span.
func TestSendJoinsTheEnqueueTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := newHarness(t)
	h.tp = tp
	h.start(nil)
	ctx := testContext(t)

	conn, err := grpcclient.New(h.grpcAddr, serviceToken, grpcclient.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	pctx, parent := tp.Tracer("test").Start(ctx, "RunDigest")
	_, err = senderv1.NewSenderServiceClient(conn).Enqueue(pctx, &senderv1.EnqueueRequest{
		Messages: []*senderv1.OutboundMessage{txMessage("k:traced", "traced@example.com", "traced")}})
	parent.End()
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	// The send span ends (and the syncer exports it) before the worker
	// records SENT.
	h.waitState(ctx, "k:traced", senderv1.MessageState_MESSAGE_STATE_SENT)
	if n := len(h.mailsTo("traced@example.com")); n != 1 {
		t.Fatalf("%d mails caught, want 1", n)
	}

	traceID := parent.SpanContext().TraceID()
	var enqueue, send []sdktrace.ReadOnlySpan
	// The server span ends just after the reply is written: wait for it.
	err = eventually(ctx, func() bool {
		enqueue, send = nil, nil
		for _, s := range exp.GetSpans().Snapshots() {
			switch {
			case s.SpanContext().TraceID() != traceID:
			case s.Name() == "paperroute.sender.v1.SenderService/Enqueue" && s.SpanKind() == trace.SpanKindServer:
				enqueue = append(enqueue, s)
			case s.Name() == "smtp.send":
				send = append(send, s)
			}
		}
		return len(enqueue) == 1 && len(send) == 1
	})
	if err != nil {
		t.Fatalf("in the caller's trace: %d Enqueue server spans and %d send spans, want 1 and 1; all spans: %v",
			len(enqueue), len(send), names(exp.GetSpans().Snapshots()))
	}
	if got, want := send[0].Parent().SpanID(), enqueue[0].SpanContext().SpanID(); got != want {
		t.Errorf("send span's parent = %s, want the Enqueue server span %s", got, want)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name()+"/"+s.SpanContext().TraceID().String())
	}
	return out
}
