package stack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/redistest"
)

// Span names the services produce (otelgrpc names RPC spans by method).
const (
	spanSubscribe  = "paperroute.subscriber.v1.SubscriberService/Subscribe"
	spanListDue    = "paperroute.subscriber.v1.SubscriberService/ListDueSubscribers"
	spanRunDigest  = "paperroute.digest.v1.DigestService/RunDigest"
	spanPutContent = "paperroute.sender.v1.SenderService/PutContent"
	spanEnqueue    = "paperroute.sender.v1.SenderService/Enqueue"
	spanJob        = "subscriber.job"
	spanRun        = "digest.run"
	spanPage       = "digest.page"
	spanSend       = "smtp.send"
)

// spans is what the in-memory exporter holds, with lookups for the
// assertions below.
type spans []sdktrace.ReadOnlySpan

// find returns the spans named name of kind in trace id (any trace when
// id is invalid) whose parent is parent (any parent when nil).
func (ss spans) find(id trace.TraceID, name string, kind trace.SpanKind, parent sdktrace.ReadOnlySpan) spans {
	var out spans
	for _, s := range ss {
		switch {
		case s.Name() != name || s.SpanKind() != kind:
		case id.IsValid() && s.SpanContext().TraceID() != id:
		case parent != nil && (s.Parent().SpanID() != parent.SpanContext().SpanID() || s.Parent().TraceID() != parent.SpanContext().TraceID()):
		default:
			out = append(out, s)
		}
	}
	return out
}

// children are the spans named name of kind whose parent is parent.
func (ss spans) children(parent sdktrace.ReadOnlySpan, name string, kind trace.SpanKind) spans {
	return ss.find(parent.SpanContext().TraceID(), name, kind, parent)
}

func (ss spans) String() string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  %s %s trace %s span %s parent %s", s.SpanKind(), s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID())
	}
	return b.String()
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func linksTo(s sdktrace.ReadOnlySpan, target sdktrace.ReadOnlySpan) bool {
	for _, l := range s.Links() {
		if l.SpanContext.SpanID() == target.SpanContext().SpanID() && l.SpanContext.TraceID() == target.SpanContext().TraceID() {
			return true
		}
	}
	return false
}

// waitSpans waits until check, run on the exported spans, returns "" (all
// there); spans end a little after the replies and mails they trace.
func waitSpans(ctx context.Context, t *testing.T, exp *tracetest.InMemoryExporter, what string, check func(spans) string) {
	t.Helper()
	for {
		ss := spans(exp.GetSpans().Snapshots())
		missing := check(ss)
		if missing == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s; spans:%v", what, missing, ss)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkSendPath checks the part of a trace that goes through the sender:
// under caller, an Enqueue client span, its server span in the sender, and
// below that nSends SMTP sends the relay accepted.
func checkSendPath(ss spans, caller sdktrace.ReadOnlySpan, nSends int) string {
	enqC := ss.children(caller, spanEnqueue, trace.SpanKindClient)
	if len(enqC) != 1 {
		return fmt.Sprintf("%d Enqueue client spans under %s, want 1", len(enqC), caller.Name())
	}
	enqS := ss.children(enqC[0], spanEnqueue, trace.SpanKindServer)
	if len(enqS) != 1 {
		return fmt.Sprintf("%d Enqueue server spans under the client span, want 1", len(enqS))
	}
	sends := ss.children(enqS[0], spanSend, trace.SpanKindClient)
	if len(sends) != nSends {
		return fmt.Sprintf("%d smtp.send spans under the Enqueue server span, want %d", len(sends), nSends)
	}
	for _, s := range sends {
		if r := attr(s, "smtp.reply").AsString(); !strings.HasPrefix(r, "250") {
			return fmt.Sprintf("smtp.send span has reply %q, want a 250", r)
		}
	}
	return ""
}

// TestTracesAcrossServices runs the three services with one in-memory
// exporter and follows the traces docs/operations.md ("Tracing")
// describes: a Subscribe to its confirmation mail's SMTP send; a RunDigest
// to its calls to the subscriber, with each page of the run a trace of its
// own (linked to the run) down to the SMTP sends; and a run the scheduler
// starts, which is a root span of its own.
func TestTracesAcrossServices(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	redis := redistest.Start(t)
	rdb := redis.Client()
	ctx := ctxT(t)
	now := time.Now().UTC()
	// The scheduler runs no slot until the cursor is set back below.
	if err := rdb.Set(ctx, "dig:sched:cursor", now.Truncate(15*time.Minute).Add(24*time.Hour).Unix(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	w := startWorldWith(t, worldOptions{redisURL: redis.URL(), tracerProvider: tp, extraEnv: map[string]string{
		"DIGEST_SCHEDULER": "true", "DIGEST_SCHEDULER_TICK": "1s",
	}})
	const reader, latecomer = "reader@example.org", "latecomer@example.net"

	// Subscribe → subscriber.job → Enqueue → smtp.send (the confirmation).
	w.subscribeAndConfirm(ctx, reader)
	waitSpans(ctx, t, exp, "the Subscribe trace", func(ss spans) string {
		subs := ss.find(trace.TraceID{}, spanSubscribe, trace.SpanKindServer, nil)
		if len(subs) != 1 || subs[0].Parent().IsValid() {
			return fmt.Sprintf("%d Subscribe server spans, want 1, a root", len(subs))
		}
		jobs := ss.children(subs[0], spanJob, trace.SpanKindConsumer)
		if len(jobs) != 1 {
			return fmt.Sprintf("%d job spans under Subscribe, want 1", len(jobs))
		}
		return checkSendPath(ss, jobs[0], 1)
	})

	yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly)
	var papers []*digestv1.Paper
	for i, title := range []string{"Tracing Papers Through Queues", "Spans All the Way Down", "A Link Between Traces"} {
		papers = append(papers, &digestv1.Paper{Id: fmt.Sprintf("2611.0000%d", i+1), Title: title, Upvotes: int32(100 - i), FeaturedDay: yesterday})
	}
	if _, err := w.dig.UpsertPapers(ctx, &digestv1.UpsertPapersRequest{Papers: papers}); err != nil {
		t.Fatalf("UpsertPapers: %v", err)
	}

	// RunDigest (an operator's grpcurl: no traceparent) → digest.run →
	// ListDueSubscribers; digest.page (own trace, linked) → PutContent and
	// Enqueue → smtp.send.
	run := w.runDigest(ctx, now.Format(time.DateOnly))
	if run.GetQueuedCount() != 1 {
		t.Fatalf("RunDigest queued %d, want 1", run.GetQueuedCount())
	}
	w.waitDigests(ctx, reader, 1)
	waitSpans(ctx, t, exp, "the RunDigest traces", func(ss spans) string {
		calls := ss.find(trace.TraceID{}, spanRunDigest, trace.SpanKindServer, nil)
		if len(calls) != 1 || calls[0].Parent().IsValid() {
			return fmt.Sprintf("%d RunDigest server spans, want 1, a root", len(calls))
		}
		runs := ss.children(calls[0], spanRun, trace.SpanKindInternal)
		if len(runs) != 1 {
			return fmt.Sprintf("%d digest.run spans under RunDigest, want 1", len(runs))
		}
		if got := attr(runs[0], "paperroute.run.id").AsString(); got != run.GetId() {
			return fmt.Sprintf("digest.run span is of run %q, want %q", got, run.GetId())
		}
		return checkRun(ss, runs[0], 1)
	})

	// The scheduler: a latecomer, due in this hour's first slot, gets the
	// scheduled run's digest; the reader's is a duplicate (no send).
	w.subscribeAndConfirm(ctx, latecomer)
	dueSlot := now.Truncate(time.Hour)
	if err := rdb.Set(ctx, "dig:sched:cursor", dueSlot.Add(-15*time.Minute).Unix(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	w.waitDigests(ctx, latecomer, 1)
	waitSpans(ctx, t, exp, "the scheduled run's traces", func(ss spans) string {
		var runs spans
		for _, s := range ss.find(trace.TraceID{}, spanRun, trace.SpanKindInternal, nil) {
			if attr(s, "paperroute.run.slot").AsString() == dueSlot.Format(time.RFC3339) {
				runs = append(runs, s)
			}
		}
		if len(runs) != 1 || runs[0].Parent().IsValid() || !attr(runs[0], "paperroute.run.scheduled").AsBool() {
			return fmt.Sprintf("%d scheduled digest.run spans for slot %s, want 1, a root", len(runs), dueSlot.Format(time.RFC3339))
		}
		return checkRun(ss, runs[0], 1)
	})
	if got := len(w.digestsTo(reader)); got != 1 {
		t.Errorf("reader has %d digests, want 1 (the scheduled run's is a duplicate)", got)
	}
}

// checkRun checks the spans of run (a digest.run span): ListDueSubscribers
// client spans under it with their server spans in the subscriber, and
// exactly one page, a trace of its own linked both ways to the run, that
// puts the content and queues nSends mails the relay accepted.
func checkRun(ss spans, run sdktrace.ReadOnlySpan, nSends int) string {
	listC := ss.children(run, spanListDue, trace.SpanKindClient)
	if len(listC) == 0 {
		return "no ListDueSubscribers client span under digest.run"
	}
	if n := len(ss.children(listC[0], spanListDue, trace.SpanKindServer)); n != 1 {
		return fmt.Sprintf("%d ListDueSubscribers server spans under the client span, want 1", n)
	}
	var pages spans
	for _, p := range ss.find(trace.TraceID{}, spanPage, trace.SpanKindInternal, nil) {
		if linksTo(p, run) {
			pages = append(pages, p)
		}
	}
	if len(pages) != 1 {
		return fmt.Sprintf("%d digest.page spans linked to the run, want 1", len(pages))
	}
	page := pages[0]
	if page.Parent().IsValid() || page.SpanContext().TraceID() == run.SpanContext().TraceID() {
		return "the page span is not the root of a trace of its own"
	}
	if !linksTo(run, page) {
		return "the run span does not link to its page"
	}
	putC := ss.children(page, spanPutContent, trace.SpanKindClient)
	if len(putC) != 1 || len(ss.children(putC[0], spanPutContent, trace.SpanKindServer)) != 1 {
		return fmt.Sprintf("%d PutContent client spans under the page (each with its server span), want 1", len(putC))
	}
	return checkSendPath(ss, page, nSends)
}
