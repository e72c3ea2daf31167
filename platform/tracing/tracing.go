// Package tracing sets up OpenTelemetry tracing for a paperroute service.
// Tracing is off (a no-op tracer provider: no network, no cost) unless the
// standard OTEL_EXPORTER_OTLP_ENDPOINT is set; then spans go to that OTLP
// endpoint over gRPC, batched. The propagator is always W3C Trace Context,
// so a trace crosses gRPC calls and the sender's queue either way.
package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// EndpointEnv is the standard variable that turns the OTLP exporter on.
const EndpointEnv = "OTEL_EXPORTER_OTLP_ENDPOINT"

// ServiceNameEnv overrides the service name spans carry.
const ServiceNameEnv = "OTEL_SERVICE_NAME"

// Propagator is the text-map propagator paperroute uses everywhere (W3C
// traceparent and tracestate).
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Setup returns the tracer provider for service and a shutdown that flushes
// and stops it (call it once, on stop). Without OTEL_EXPORTER_OTLP_ENDPOINT
// the provider is a no-op and shutdown does nothing. The exporter reads the
// other standard OTEL_EXPORTER_OTLP_* variables (headers, TLS, timeout)
// itself.
func Setup(ctx context.Context, getenv func(string) string, service string) (trace.TracerProvider, func(context.Context) error, error) {
	if getenv(EndpointEnv) == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	if name := getenv(ServiceNameEnv); name != "" {
		service = name
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(getenv(EndpointEnv)))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
