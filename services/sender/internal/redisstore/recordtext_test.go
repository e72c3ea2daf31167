package redisstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// relayText is a relay's answer of n bytes, greylisting-shaped.
func relayText(code string, n int) string {
	s := "smtpmail: RCPT: relay answered " + code + " <reader@example.com>: Recipient address rejected: Greylisted, see https://postgrey.example/help/ "
	for len(s) < n {
		s += "é" // multi-byte characters cut across pieces
	}
	return s[:n]
}

// queueOne queues m and returns its stream entry, read by consumer c1.
func queueOne(ctx context.Context, t *testing.T, s *redisstore.Store, m queue.Message) delivery.Entry {
	t.Helper()
	if _, err := s.Enqueue(ctx, []queue.Message{m}); err != nil {
		t.Fatal(err)
	}
	p := queue.Partition(m.ID, partitions)
	entries, err := s.Read(ctx, p, "c1", 10, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.MessageID == m.ID {
			return e
		}
	}
	t.Fatalf("Read = %v, want the entry of %s", entries, m.ID)
	return delivery.Entry{}
}

// textFields returns the record's fields that hold a status text: error,
// reply and their pieces, sorted.
func textFields(ctx context.Context, t *testing.T, rdb redis.UniversalClient, key string) []string {
	t.Helper()
	v, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for f := range v {
		if f == "error" || f == "reply" || (len(f) > 1 && (f[0] == 'e' || f[0] == 'r') && f[1] >= '0' && f[1] <= '9') {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// TestStatusTextsKeepTheRecordAListpack follows a greylisted digest through
// its retries to SENT: the relay's long error and reply are stored in
// pieces, so the record stays a listpack, and read back whole; a shorter
// text leaves none of a longer one's pieces behind.
func TestStatusTextsKeepTheRecordAListpack(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	m := digestMessage("digest:greylisted:2026-11-30")
	e := queueOne(ctx, t, s, m)
	key := redisstore.RecordKey(e.Partition, m.ID)
	at := time.UnixMilli(1_750_000_100_000)
	check := func(t *testing.T, lastError, reply string, fields ...string) {
		t.Helper()
		got, err := s.GetMessage(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastError != lastError || got.Reply != reply {
			t.Errorf("GetMessage: error %q, reply %q; want %q, %q", got.LastError, got.Reply, lastError, reply)
		}
		if f := textFields(ctx, t, rdb, key); !slices.Equal(f, fields) {
			t.Errorf("text fields %v, want %v", f, fields)
		}
		if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != "listpack" {
			t.Errorf("record encoding = %q, want listpack", enc)
		}
	}
	retry := func(t *testing.T, reason string) {
		t.Helper()
		r := delivery.Retry{State: queue.StateRetrying, Reason: reason, Due: at.Add(time.Hour)}
		if err := s.Retry(ctx, e, "", r, at); err != nil {
			t.Fatal(err)
		}
	}
	long, shorter, short := relayText("450 4.2.0", 300), relayText("451 4.7.1", 100), "451 4.3.0 try again later"

	retry(t, long)
	check(t, long, "", "e0", "e1", "e2", "e3", "e4")
	retry(t, shorter)
	check(t, shorter, "", "e0", "e1")
	retry(t, short)
	check(t, short, "", "error")
	retry(t, long)
	check(t, long, "", "e0", "e1", "e2", "e3", "e4")
	// MarkSent's reason "" keeps the last error.
	reply := "250 2.0.0 Ok: queued as 4Xyz; " + strings.Repeat("k", 70)
	if err := s.MarkSent(ctx, e, reply, at); err != nil {
		t.Fatal(err)
	}
	check(t, long, reply, "e0", "e1", "e2", "e3", "e4", "r0", "r1")
}

// TestDeadTextsAndRequeue checks the finish script's error (DEAD with a
// long reason after a long retry error, CANCELLED's fixed 76-byte reason)
// and that a dead message queued again keeps none of its error's pieces.
func TestDeadTextsAndRequeue(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	at := time.UnixMilli(1_750_000_100_000)
	dead := message("dead", queue.LaneBulk)
	e := queueOne(ctx, t, s, dead)
	key := redisstore.RecordKey(e.Partition, dead.ID)
	if err := s.Retry(ctx, e, "", delivery.Retry{State: queue.StateRetrying, Reason: relayText("450", 300), Due: at}, at); err != nil {
		t.Fatal(err)
	}
	reason := relayText("550 5.1.1", 130)
	if err := s.MarkDead(ctx, e, "", reason, false, at); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetMessage(ctx, dead.ID); got.LastError != reason {
		t.Errorf("dead: error %q, want %q", got.LastError, reason)
	}
	if f := textFields(ctx, t, rdb, key); !slices.Equal(f, []string{"e0", "e1", "e2"}) {
		t.Errorf("dead: text fields %v", f)
	}
	if n, err := s.RetryDeadLetters(ctx, queue.LaneBulk, 10, at); err != nil || n != 1 {
		t.Fatalf("RetryDeadLetters = %d, %v; want 1", n, err)
	}
	if got, _ := s.GetMessage(ctx, dead.ID); got.State != queue.StateQueued || got.LastError != "" {
		t.Errorf("requeued: state %v, error %q", got.State, got.LastError)
	}
	if f := textFields(ctx, t, rdb, key); len(f) != 0 {
		t.Errorf("requeued: text fields %v, want none", f)
	}

	cancelled := message("cancelled", queue.LaneBulk)
	e = queueOne(ctx, t, s, cancelled)
	if err := s.MarkCancelled(ctx, e, "", at); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMessage(ctx, cancelled.ID)
	if err != nil || got.State != queue.StateCancelled || !strings.HasPrefix(got.LastError, "cancelled: ") || len(got.LastError) <= 64 {
		t.Errorf("cancelled = %+v, %v", got, err)
	}
	if enc := rdb.ObjectEncoding(ctx, redisstore.RecordKey(e.Partition, cancelled.ID)).Val(); enc != "listpack" {
		t.Errorf("cancelled record encoding = %q, want listpack", enc)
	}
}

// TestStatusTextsOfTheEarlierVersion checks a rolling upgrade: an error
// and a reply written whole by the earlier version are read; a later error
// in pieces replaces the whole one; an error the earlier version writes
// whole over pieces (its retry script leaves them) is the one read.
func TestStatusTextsOfTheEarlierVersion(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	m := message("rolling upgrade", queue.LaneBulk)
	e := queueOne(ctx, t, s, m)
	key := redisstore.RecordKey(e.Partition, m.ID)
	at := time.UnixMilli(1_750_000_100_000)
	read := func(t *testing.T) queue.Message {
		t.Helper()
		got, err := s.GetMessage(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	old, oldReply := relayText("450 old", 150), "250 2.0.0 "+strings.Repeat("q", 90)
	if err := rdb.HSet(ctx, key, "error", old, "reply", oldReply).Err(); err != nil {
		t.Fatal(err)
	}
	if got := read(t); got.LastError != old || got.Reply != oldReply {
		t.Errorf("earlier version's texts read as %q, %q", got.LastError, got.Reply)
	}
	if err := rdb.HDel(ctx, key, "reply").Err(); err != nil {
		t.Fatal(err)
	}
	long := relayText("450 new", 200)
	if err := s.Retry(ctx, e, "", delivery.Retry{State: queue.StateRetrying, Reason: long, Due: at}, at); err != nil {
		t.Fatal(err)
	}
	if got := read(t); got.LastError != long {
		t.Errorf("error %q, want %q", got.LastError, long)
	}
	if f := textFields(ctx, t, rdb, key); !slices.Equal(f, []string{"e0", "e1", "e2", "e3"}) {
		t.Errorf("text fields %v, want the new error's pieces only", f)
	}
	// The earlier version's retry script: 'error' whole, the pieces left.
	if err := rdb.HSet(ctx, key, "error", old).Err(); err != nil {
		t.Fatal(err)
	}
	if got := read(t); got.LastError != old {
		t.Errorf("error written whole over pieces read as %q, want %q", got.LastError, old)
	}
	if err := s.Retry(ctx, e, "", delivery.Retry{State: queue.StateRetrying, Reason: "451 short", Due: at}, at); err != nil {
		t.Fatal(err)
	}
	if got := read(t); got.LastError != "451 short" {
		t.Errorf("error %q, want the short one", got.LastError)
	}
	if f := textFields(ctx, t, rdb, key); !slices.Equal(f, []string{"error"}) {
		t.Errorf("text fields %v, want error only", f)
	}
}
