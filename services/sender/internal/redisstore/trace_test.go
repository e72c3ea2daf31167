package redisstore_test

import (
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// TestEnqueueStoresTheTraceParent checks that a message queued inside a
// span keeps the span's W3C traceparent in its record, and that one queued
// without a span gets no tp field at all (records stay small untraced).
func TestEnqueueStoresTheTraceParent(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	traced, plain := message("traced", queue.LaneBulk), message("plain", queue.LaneBulk)
	if _, err := s.Enqueue(trace.ContextWithSpanContext(ctx, sc), []queue.Message{traced}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, []queue.Message{plain}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMessage(ctx, traced.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got.TraceParent != want {
		t.Errorf("TraceParent = %q, want %q", got.TraceParent, want)
	}
	key := redisstore.RecordKey(queue.Partition(plain.ID, partitions), plain.ID)
	if n, err := rdb.HExists(ctx, key, "tp").Result(); err != nil || n {
		t.Errorf("untraced record has a tp field: %v, %v", n, err)
	}
}
