// Package runtrace traces digest runs with OpenTelemetry, behind the
// digest.Tracer the domain declares.
//
// A run is a "digest.run" span: the child of the RunDigest server span when
// an operator started it, a root span when the scheduler did. Its calls to
// ListDueSubscribers are its children. Each page of due subscribers is a
// trace of its own: a root "digest.page" span linked to the run span (and
// the run span to it), parent of the page's PutContent and Enqueue calls
// and so, through the sender's queue, of that page's SMTP sends. A run of
// 100 000 subscribers is then one small run trace and 200 page traces of
// about 500 sends each, instead of one trace of 100 000 spans that
// collectors cap (Tempo's max_bytes_per_trace) and UIs cannot show.
package runtrace

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
)

// Span names.
const (
	RunSpan  = "digest.run"
	PageSpan = "digest.page"
)

// Attribute keys the spans carry.
const (
	AttrRunID     = "paperroute.run.id"
	AttrEdition   = "paperroute.run.edition"
	AttrSlot      = "paperroute.run.slot"
	AttrScheduled = "paperroute.run.scheduled"
	AttrDryRun    = "paperroute.run.dry_run"
	AttrState     = "paperroute.run.state"
	AttrSubs      = "paperroute.page.subscribers"
)

// New returns a digest.Tracer that traces with tp, or nil (no tracing,
// nothing to pay) when tp is nil or a no-op provider.
func New(tp trace.TracerProvider) digest.Tracer {
	if tp == nil {
		return nil
	}
	if _, off := tp.(noop.TracerProvider); off {
		return nil
	}
	return &tracer{t: tp.Tracer("github.com/paperroute/paperroute/services/digest")}
}

type tracer struct {
	t trace.Tracer
}

// StartRun implements digest.Tracer: the run span joins origin's trace
// (the RunDigest call), or starts one (the scheduler).
func (t *tracer) StartRun(ctx, origin context.Context, run digest.Run) (context.Context, func(digest.RunEnd)) {
	attrs := []attribute.KeyValue{
		attribute.String(AttrRunID, run.ID),
		attribute.Bool(AttrScheduled, run.Scheduled),
		attribute.Bool(AttrDryRun, run.DryRun),
	}
	if run.Edition != "" {
		attrs = append(attrs, attribute.String(AttrEdition, run.Edition))
	}
	if !run.Slot.IsZero() {
		attrs = append(attrs, attribute.String(AttrSlot, run.Slot.UTC().Format(time.RFC3339)))
	}
	parent := trace.SpanContextFromContext(origin)
	ctx = trace.ContextWithSpanContext(ctx, parent) // invalid (a root) when origin has none
	ctx, span := t.t.Start(ctx, RunSpan, trace.WithAttributes(attrs...))
	return ctx, func(end digest.RunEnd) {
		span.SetAttributes(attribute.String(AttrState, end.State.String()))
		span.SetAttributes(countAttrs(end.Counts)...)
		if end.State == digest.RunFailed {
			span.SetStatus(codes.Error, end.Error)
		}
		span.End()
	}
}

// StartPage implements digest.Tracer: a new trace whose root span links
// to the run span, which links back.
func (t *tracer) StartPage(ctx context.Context, run digest.Run, subscribers int) (context.Context, func(digest.Counts, error)) {
	runSpan := trace.SpanFromContext(ctx)
	ctx, span := t.t.Start(ctx, PageSpan, trace.WithNewRoot(),
		trace.WithLinks(trace.Link{SpanContext: runSpan.SpanContext()}),
		trace.WithAttributes(attribute.String(AttrRunID, run.ID), attribute.Int(AttrSubs, subscribers)))
	runSpan.AddLink(trace.Link{SpanContext: span.SpanContext()})
	return ctx, func(c digest.Counts, err error) {
		span.SetAttributes(countAttrs(c)...)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// countAttrs are a run's or page's counts as span attributes.
func countAttrs(c digest.Counts) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64("paperroute.count.due", c.Due),
		attribute.Int64("paperroute.count.queued", c.Queued),
		attribute.Int64("paperroute.count.duplicate", c.Duplicate),
		attribute.Int64("paperroute.count.skipped", c.Skipped),
		attribute.Int64("paperroute.count.failed", c.Failed),
		attribute.Int64("paperroute.count.missed", c.Missed),
	}
}
