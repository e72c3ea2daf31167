package sendtrace_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/sendtrace"
)

// relay is an in-memory delivery.Mailer that accepts every message.
type relay struct{ sent int }

func (r *relay) Dial(context.Context) (delivery.Conn, error) { return r, nil }
func (r *relay) Send(context.Context, *delivery.Mail) error  { r.sent++; return nil }
func (r *relay) Reusable() bool                              { return true }
func (r *relay) Close() error                                { return nil }
func (r *relay) LastReply() string                           { return "250 2.0.0 queued" }

// TestOffCostsNothing checks that without a recording provider the
// dispatcher gets the relay itself: no span, no allocation per send.
func TestOffCostsNothing(t *testing.T) {
	r := &relay{}
	for name, tp := range map[string]trace.TracerProvider{"nil": nil, "no-op": noop.NewTracerProvider()} {
		if got := sendtrace.Mailer(r, tp); got != delivery.Mailer(r) {
			t.Errorf("Mailer(relay, %s provider) = %T, want the relay itself", name, got)
		}
	}
}

// TestSendSpan checks the span of a traced send: a client span, child of
// the span whose traceparent the message carries, with the relay's reply.
func TestSendSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	conn, err := sendtrace.Mailer(&relay{}, tp).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const tp01 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := conn.Send(context.Background(), &delivery.Mail{MessageID: "m1", TraceParent: tp01}); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != sendtrace.SpanName || s.SpanKind != trace.SpanKindClient ||
		s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %s kind %v trace %s parent %s, want %s, client, child of the traceparent's span",
			s.Name, s.SpanKind, s.SpanContext.TraceID(), s.Parent.SpanID(), sendtrace.SpanName)
	}
}

// BenchmarkSend is the cost tracing adds to one send, beside the relay's
// own (here nothing): off (what the dispatcher gets without an endpoint)
// and on (a recording provider, spans dropped).
func BenchmarkSend(b *testing.B) {
	mail := &delivery.Mail{MessageID: "m1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	on := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	for _, bc := range []struct {
		name string
		tp   trace.TracerProvider
	}{{"off", noop.NewTracerProvider()}, {"on", on}} {
		b.Run(bc.name, func(b *testing.B) {
			conn, err := sendtrace.Mailer(&relay{}, bc.tp).Dial(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := conn.Send(ctx, mail); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
