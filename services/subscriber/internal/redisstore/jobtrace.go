package redisstore

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// traceField is the job entry's field holding the W3C traceparent of the
// call that pushed the job (a Subscribe, an import, an unsubscribe), so
// the job's work — the confirmation mail's Enqueue — joins that trace. It
// is absent when the call was not traced.
const traceField = "tp"

// JobSpan is the name of the span around one job's work.
const JobSpan = "subscriber.job"

// WithTracerProvider makes q trace each job it works as a span (JobSpan)
// in the trace of the call that pushed it; nil or a no-op provider turns
// that off. It returns q.
func (q *Jobs) WithTracerProvider(tp trace.TracerProvider) *Jobs {
	q.tracer = nil
	if _, off := tp.(noop.TracerProvider); tp != nil && !off {
		q.tracer = tp.Tracer("github.com/paperroute/paperroute/services/subscriber")
	}
	return q
}

// traceParent is the W3C traceparent of ctx's span, or "" when ctx has no
// valid span (tracing off).
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// startJob returns the context a job's handler runs in: with the pushing
// call's trace (tp) and, when q traces, a consumer span in it; end ends
// the span with the handler's error.
func (q *Jobs) startJob(ctx context.Context, tp string, j subscription.Job) (_ context.Context, end func(error)) {
	if tp != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
	}
	if q.tracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := q.tracer.Start(ctx, JobSpan, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("paperroute.job.kind", string(j.Kind))))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "job failed; will retry")
		}
		span.End()
	}
}
