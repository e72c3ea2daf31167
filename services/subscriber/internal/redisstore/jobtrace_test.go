package redisstore_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/subscriber/internal/redisstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// TestJobsCarryTheTrace checks that a job pushed inside a span is worked
// in a job span that is a child of it (the confirmation mail of a
// Subscribe joins the Subscribe's trace), and that an untraced job is
// worked outside any trace.
func TestJobsCarryTheTrace(t *testing.T) {
	t.Parallel()
	_, rdb := newStore(t)
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(ctx) })
	jobs := redisstore.NewJobs(rdb, "c1").WithTracerProvider(tp)

	pctx, push := tp.Tracer("test").Start(ctx, "Subscribe")
	if err := jobs.Push(pctx, subscription.Job{Kind: subscription.JobCancel, Email: "traced@example.com"}); err != nil {
		t.Fatal(err)
	}
	push.End()
	if err := jobs.Push(ctx, subscription.Job{Kind: subscription.JobCancel, Email: "plain@example.com"}); err != nil {
		t.Fatal(err)
	}
	handled := map[string]trace.SpanContext{}
	n, err := jobs.RunOnce(ctx, logging.Discard(), func(ctx context.Context, j subscription.Job) error {
		handled[j.Email] = trace.SpanContextFromContext(ctx)
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v; want 2 jobs done", n, err)
	}

	var traced, plain *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name != redisstore.JobSpan {
			continue
		}
		if s.SpanContext.TraceID() == push.SpanContext().TraceID() {
			traced = &s
		} else {
			plain = &s
		}
	}
	if traced == nil {
		t.Fatalf("no %s span in the pushing call's trace; spans: %v", redisstore.JobSpan, exp.GetSpans())
	}
	if traced.Parent.SpanID() != push.SpanContext().SpanID() || traced.SpanKind != trace.SpanKindConsumer {
		t.Errorf("job span: parent %s kind %v, want the pushing span %s and consumer", traced.Parent.SpanID(), traced.SpanKind, push.SpanContext().SpanID())
	}
	if got := handled["traced@example.com"]; got.SpanID() != traced.SpanContext.SpanID() {
		t.Errorf("handler ran in span %s, want the job span %s", got.SpanID(), traced.SpanContext.SpanID())
	}
	if plain == nil || plain.Parent.IsValid() {
		t.Errorf("untraced job: span %v, want a root job span", plain)
	}
}
