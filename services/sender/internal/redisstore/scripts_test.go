package redisstore

import (
	"context"
	"slices"
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
	keys := []string{IndexKey(0), RecordKey(0, id), StreamKey(queue.LaneBulk, 0)}
	args := []any{12, "k", 1, 1, id, "rcpt", "r@example.com", "lane", "bulk", "content", "c", "vars", recordLayout}
	run := func(args []any) []int64 {
		t.Helper()
		ns, err := enqueueScript.Run(ctx, rdb, keys, args...).Int64Slice()
		if err != nil || len(ns) != 1 {
			t.Fatalf("enqueue script = %v, %v; want one answer", ns, err)
		}
		return ns
	}
	for i := range 2 {
		if n := run(args)[0]; n != 1 {
			t.Fatalf("run %d = %d; want 1 (created)", i, n)
		}
	}
	other := append([]any(nil), args...)
	other[2] = 2
	if n := run(other)[0]; n != 0 {
		t.Errorf("another call = %d; want 0 (duplicate)", n)
	}
	collision := append([]any(nil), args...)
	collision[1] = "a different key"
	if n := run(collision)[0]; n != -1 {
		t.Errorf("a colliding key = %d; want -1", n)
	}
	if n := rdb.XLen(ctx, keys[2]).Val(); n != 1 {
		t.Errorf("stream has %d entries, want 1", n)
	}
}

// One run queues several messages of a partition, each on its own: a
// duplicate or a colliding key among them neither stops nor changes the
// others.
func TestEnqueueScriptRunsEachMessageOnItsOwn(t *testing.T) {
	rdb := redistest.Start(t).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys := []string{IndexKey(0)}
	var args []any
	for i, key := range []string{"a", "b", "c"} {
		id := queue.MessageID(key)
		keys = append(keys, RecordKey(0, id), StreamKey(queue.LaneBulk, 0))
		args = append(args, 6, key, 10+i, 1000+i, id, "rcpt", key+"@example.com")
	}
	if _, err := enqueueScript.Run(ctx, rdb, keys[:3], args[:7]...).Result(); err != nil {
		t.Fatal(err) // "a" queued before, by another call
	}
	args[8] = "not b" // b's record is to be found under another key
	if err := rdb.HSet(ctx, keys[3], "key", "b", "nonce", 99).Err(); err != nil {
		t.Fatal(err)
	}
	args[2] = 99 // a: another call's nonce
	ns, err := enqueueScript.Run(ctx, rdb, keys, args...).Int64Slice()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, -1, 1}; !slices.Equal(ns, want) {
		t.Errorf("answers = %v, want %v (duplicate, collision, created)", ns, want)
	}
	if n := rdb.XLen(ctx, keys[2]).Val(); n != 2 {
		t.Errorf("stream has %d entries, want 2 (a, c)", n)
	}
	if n := rdb.ZCard(ctx, keys[0]).Val(); n != 2 {
		t.Errorf("index has %d ids, want 2 (a, c)", n)
	}
	if got := rdb.HGet(ctx, keys[5], "rcpt").Val(); got != "c@example.com" {
		t.Errorf("c's record has rcpt %q", got)
	}
}
