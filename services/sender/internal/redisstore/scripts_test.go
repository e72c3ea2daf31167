package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// A retried script run (go-redis retries after a network error, even when
// the first run succeeded) must still report "created" to its caller, and
// must not add a second stream entry.
func TestEnqueueScriptRecognisesItsOwnRetry(t *testing.T) {
	rdb := redistest.Start(t).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := queue.MessageID("k")
	keys := []string{RecordKey(0, id), StreamKey(queue.LaneBulk, 0), IndexKey(0)}
	args := []any{"k", 1, 1, id, "rcpt", "r@example.com", "lane", "bulk", "content", "c", "vars", recordLayout}
	for run := range 2 {
		n, err := enqueueScript.Run(ctx, rdb, keys, args...).Int()
		if err != nil || n != 1 {
			t.Fatalf("run %d = %d, %v; want 1 (created)", run, n, err)
		}
	}
	other := append([]any(nil), args...)
	other[1] = 2
	if n, err := enqueueScript.Run(ctx, rdb, keys, other...).Int(); err != nil || n != 0 {
		t.Errorf("another call = %d, %v; want 0 (duplicate)", n, err)
	}
	collision := append([]any(nil), args...)
	collision[0] = "a different key"
	if n, err := enqueueScript.Run(ctx, rdb, keys, collision...).Int(); err != nil || n != -1 {
		t.Errorf("a colliding key = %d, %v; want -1", n, err)
	}
	if n := rdb.XLen(ctx, keys[1]).Val(); n != 1 {
		t.Errorf("stream has %d entries, want 1", n)
	}
}
