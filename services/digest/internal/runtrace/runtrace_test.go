package runtrace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/runtrace"
)

func newProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func byName(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// TestOffIsNil checks that without a real provider there is no tracer at
// all, so a run pays nothing for tracing.
func TestOffIsNil(t *testing.T) {
	for name, tp := range map[string]trace.TracerProvider{"nil": nil, "no-op": noop.NewTracerProvider()} {
		if got := runtrace.New(tp); got != nil {
			t.Errorf("New(%s provider) = %T, want nil", name, got)
		}
	}
}

// TestRunJoinsTheCallersTrace checks that an operator's run is a child of
// the span of the call that started it, though it runs in a context of
// its own, and that a failed run says so.
func TestRunJoinsTheCallersTrace(t *testing.T) {
	tp, exp := newProvider(t)
	tr := runtrace.New(tp)
	origin, call := tp.Tracer("test").Start(context.Background(), "RunDigest")
	call.End()
	_, end := tr.StartRun(context.Background(), origin, digest.Run{ID: "R1", Edition: "2026-06-12"})
	end(digest.RunEnd{State: digest.RunFailed, Error: "could not list the due subscribers"})

	runs := byName(exp.GetSpans(), runtrace.RunSpan)
	if len(runs) != 1 {
		t.Fatalf("%d run spans, want 1", len(runs))
	}
	run := runs[0]
	if run.Parent.SpanID() != call.SpanContext().SpanID() || run.SpanContext.TraceID() != call.SpanContext().TraceID() {
		t.Errorf("run span's parent = %s/%s, want the RunDigest span %s/%s", run.SpanContext.TraceID(), run.Parent.SpanID(),
			call.SpanContext().TraceID(), call.SpanContext().SpanID())
	}
	if run.Status.Description != "could not list the due subscribers" {
		t.Errorf("run span status = %+v, want the run's error", run.Status)
	}
}

// TestScheduledRunAndPages checks that a scheduler's run is a root span
// and that each page is a trace of its own, linked both ways to the run.
func TestScheduledRunAndPages(t *testing.T) {
	tp, exp := newProvider(t)
	tr := runtrace.New(tp)
	ctx := context.Background()
	r := digest.Run{ID: "R2", Slot: time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC), Scheduled: true}
	runCtx, endRun := tr.StartRun(ctx, ctx, r)
	var pageCtxs []context.Context
	for range 2 {
		pctx, endPage := tr.StartPage(runCtx, r, 500)
		pageCtxs = append(pageCtxs, pctx)
		endPage(digest.Counts{Due: 500, Queued: 500}, nil)
	}
	_, endPage := tr.StartPage(runCtx, r, 3)
	endPage(digest.Counts{}, errors.New("sender unavailable"))
	endRun(digest.RunEnd{State: digest.RunSucceeded})

	spans := exp.GetSpans()
	run := byName(spans, runtrace.RunSpan)[0]
	if run.Parent.IsValid() {
		t.Errorf("scheduled run span has parent %s, want a root span", run.Parent.SpanID())
	}
	pages := byName(spans, runtrace.PageSpan)
	if len(pages) != 3 {
		t.Fatalf("%d page spans, want 3", len(pages))
	}
	traces := map[trace.TraceID]bool{run.SpanContext.TraceID(): true}
	for i, p := range pages {
		if p.Parent.IsValid() {
			t.Errorf("page %d has a parent, want a root span", i)
		}
		traces[p.SpanContext.TraceID()] = true
		if len(p.Links) != 1 || p.Links[0].SpanContext.SpanID() != run.SpanContext.SpanID() {
			t.Errorf("page %d links %v, want the run span %s", i, p.Links, run.SpanContext.SpanID())
		}
	}
	if len(traces) != 4 {
		t.Errorf("run and pages span %d traces, want 4 (one each)", len(traces))
	}
	if len(run.Links) != 3 {
		t.Errorf("run span has %d links, want one per page (3)", len(run.Links))
	}
	if got := trace.SpanContextFromContext(pageCtxs[0]); !got.Equal(pages[0].SpanContext) {
		t.Errorf("page context carries span %s, want the page span %s", got.SpanID(), pages[0].SpanContext.SpanID())
	}
	if pages[2].Status.Description != "sender unavailable" {
		t.Errorf("failed page status = %+v, want its error", pages[2].Status)
	}
}
