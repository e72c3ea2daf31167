package tracing_test

import (
	"context"
	"testing"

	"github.com/paperroute/paperroute/platform/tracing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestOffWithoutEndpoint checks that without OTEL_EXPORTER_OTLP_ENDPOINT
// spans are not recorded at all.
func TestOffWithoutEndpoint(t *testing.T) {
	tp, shutdown, err := tracing.Setup(context.Background(), env(nil), "sender")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("span recorded without an endpoint, want a no-op provider")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestOnWithEndpoint checks that an endpoint turns recording on; the
// exporter connects lazily, so nothing needs to listen there.
func TestOnWithEndpoint(t *testing.T) {
	tp, shutdown, err := tracing.Setup(context.Background(), env(map[string]string{
		tracing.EndpointEnv: "http://127.0.0.1:1", tracing.ServiceNameEnv: "custom"}), "sender")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	if !span.IsRecording() {
		t.Error("span not recorded with an endpoint set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait for the unreachable collector
	_ = shutdown(ctx)
}
