package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

const partitions = 2

func newStore(t testing.TB) (*redisstore.Store, redis.UniversalClient, context.Context) {
	t.Helper()
	r := redistest.Start(t)
	rdb := r.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s := redisstore.New(rdb, partitions)
	if err := s.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	return s, rdb, ctx
}

func message(key string, lane queue.Lane) queue.Message {
	now := time.UnixMilli(1_750_000_000_000)
	return queue.Message{
		ID: queue.MessageID(key), IdempotencyKey: key, Recipient: "r@example.com", Lane: lane,
		ContentID: (queue.Content{Subject: "s", Text: "t"}).ID(), Variables: map[string]string{"a": "1"},
		State: queue.StateQueued, Created: now, Updated: now,
	}
}

func TestEnqueueIsIdempotentAndTiny(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	m := message("digest:1:2026-06-12", queue.LaneBulk)
	m.ListUnsubscribeURL = "https://x.example/u"

	created, err := s.Enqueue(ctx, []queue.Message{m, m})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, false}, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	again, err := s.Enqueue(ctx, []queue.Message{m})
	if err != nil || again[0] {
		t.Errorf("second Enqueue = %v, %v; want not created", again, err)
	}

	p := queue.Partition(m.ID, partitions)
	entries, err := rdb.XRange(ctx, redisstore.StreamKey(queue.LaneBulk, p), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("stream has %d entries, want 1", len(entries))
	}
	if diff := cmp.Diff(map[string]any{"id": m.ID}, entries[0].Values); diff != "" {
		t.Errorf("entry fields (-want +got):\n%s", diff)
	}
	got, err := s.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if ttl := rdb.TTL(ctx, redisstore.RecordKey(p, m.ID)).Val(); ttl != -1 {
		t.Errorf("queued record TTL = %v, want none", ttl)
	}
}

func TestEnqueueAfterScriptFlush(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	if _, err := s.Enqueue(ctx, []queue.Message{message("a", queue.LaneTransactional)}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil { // as after a Redis restart
		t.Fatal(err)
	}
	created, err := s.Enqueue(ctx, []queue.Message{message("a", queue.LaneTransactional), message("b", queue.LaneTransactional)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{false, true}, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
}

func TestGetMessageNotFound(t *testing.T) {
	t.Parallel()
	s, _, ctx := newStore(t)
	if _, err := s.GetMessage(ctx, queue.MessageID("nope")); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("GetMessage = %v, want ErrNotFound", err)
	}
	if _, err := s.GetContent(ctx, (queue.Content{Subject: "x"}).ID()); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("GetContent = %v, want ErrNotFound", err)
	}
}

func TestContent(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	c := queue.Content{Subject: "Hi {{name}}", HTML: "<p>{{name}} {{url}}</p>", Text: "{{name}}"}
	missing := (queue.Content{Subject: "other"}).ID()
	if err := s.PutContents(ctx, map[string]queue.Content{c.ID(): c}); err != nil {
		t.Fatal(err)
	}
	vars, err := s.ContentVariables(ctx, []string{c.ID(), missing})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{c.ID(): {"name", "url"}}, vars); diff != "" {
		t.Errorf("ContentVariables (-want +got):\n%s", diff)
	}
	got, err := s.GetContent(ctx, c.ID())
	if err != nil || got != c {
		t.Errorf("GetContent = %+v, %v; want %+v", got, err, c)
	}
	if err := rdb.Expire(ctx, redisstore.ContentKey(c.ID()), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchContents(ctx, []string{c.ID(), missing}); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.TTL(ctx, redisstore.ContentKey(c.ID())).Val(); ttl < redisstore.ContentTTL-time.Minute {
		t.Errorf("TTL after touch = %v, want about %v", ttl, redisstore.ContentTTL)
	}
	if n := rdb.Exists(ctx, redisstore.ContentKey(missing)).Val(); n != 0 {
		t.Error("touching a missing content created it")
	}
}

func TestReadClaimAndFinish(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	// Find keys of both lanes in partition 0.
	var bulk, tx queue.Message
	for i := 0; bulk.ID == "" || tx.ID == ""; i++ {
		key := fmt.Sprint("k", i)
		if queue.Partition(queue.MessageID(key), partitions) != 0 {
			continue
		}
		if bulk.ID == "" {
			bulk = message(key, queue.LaneBulk)
		} else {
			tx = message(key, queue.LaneTransactional)
		}
	}
	if _, err := s.Enqueue(ctx, []queue.Message{bulk, tx}); err != nil {
		t.Fatal(err)
	}

	entries, err := s.Read(ctx, 0, "c1", 10, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Lane.String()+":"+e.MessageID)
	}
	if diff := cmp.Diff([]string{"tx:" + tx.ID, "bulk:" + bulk.ID}, got); diff != "" {
		t.Fatalf("Read order (-want +got):\n%s", diff)
	}
	txEntry, bulkEntry := entries[0], entries[1]

	t.Run("claim skips fresh entries and takes idle ones", func(t *testing.T) {
		claimed, _, err := s.Claim(ctx, 0, queue.LaneBulk, "c2", time.Hour, "0-0", 10)
		if err != nil || len(claimed) != 0 {
			t.Fatalf("Claim of fresh entries = %v, %v; want none", claimed, err)
		}
		claimed, next, err := s.Claim(ctx, 0, queue.LaneBulk, "c2", 0, "0-0", 10)
		if err != nil || len(claimed) != 1 || claimed[0] != bulkEntry || next != "0-0" {
			t.Fatalf("Claim = %v, %q, %v; want the bulk entry", claimed, next, err)
		}
	})

	t.Run("extend touches only own entries", func(t *testing.T) {
		// bulk now belongs to c2; c1 must not take it back by extending.
		if err := s.Extend(ctx, "c1", []delivery.Entry{txEntry, bulkEntry}); err != nil {
			t.Fatal(err)
		}
		owners := map[string]string{}
		for _, lane := range queue.Lanes() {
			ext, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: redisstore.StreamKey(lane, 0), Group: redisstore.Group, Start: "-", End: "+", Count: 10}).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ext {
				owners[lane.String()] = p.Consumer
				if p.RetryCount != 1 && lane == queue.LaneTransactional {
					t.Errorf("extend counted a delivery: retry count %d", p.RetryCount)
				}
			}
		}
		if diff := cmp.Diff(map[string]string{"tx": "c1", "bulk": "c2"}, owners); diff != "" {
			t.Errorf("owners (-want +got):\n%s", diff)
		}
	})

	t.Run("attempts and outcomes", func(t *testing.T) {
		for want := 1; want <= 2; want++ {
			l, err := s.Lease(ctx, txEntry, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now()})
			if err != nil || l.Result != delivery.LeaseAcquired || l.Attempts != want || l.Token != fmt.Sprintf("sending:c1:%d", want) {
				t.Fatalf("Lease = %+v, %v; want acquired, attempt %d", l, err, want)
			}
		}
		if l, err := s.Lease(ctx, txEntry, delivery.LeaseRequest{Consumer: "c2", Duration: time.Minute, At: time.Now()}); err != nil || l.Result != delivery.LeaseHeld {
			t.Fatalf("Lease by another consumer = %+v, %v; want held", l, err)
		}
		if m, _ := s.GetMessage(ctx, tx.ID); m.Attempts != 2 {
			t.Errorf("a refused lease counted an attempt: %d attempts, want 2", m.Attempts)
		}
		if err := s.Retry(ctx, txEntry, "", delivery.Retry{State: queue.StateRetrying, Reason: "451 later", Due: time.Now().Add(time.Hour)}, time.Now()); err != nil {
			t.Fatal(err)
		}
		at := time.UnixMilli(1_750_000_123_000)
		for range 2 { // idempotent
			if err := s.MarkSent(ctx, txEntry, "250 ok", at); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkDead(ctx, bulkEntry, "", "550 no such user", false, at); err != nil {
				t.Fatal(err)
			}
		}
		sent, err := s.GetMessage(ctx, tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sent.State != queue.StateSent || !sent.Sent.Equal(at) || sent.Attempts != 2 || sent.LastError != "451 later" {
			t.Errorf("sent record = %+v", sent)
		}
		dead, err := s.GetMessage(ctx, bulk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if dead.State != queue.StateDead || dead.LastError != "550 no such user" || !dead.Sent.IsZero() {
			t.Errorf("dead record = %+v", dead)
		}
		for _, id := range []string{tx.ID, bulk.ID} {
			if ttl := rdb.TTL(ctx, redisstore.RecordKey(0, id)).Val(); ttl < redisstore.RecordTTL-time.Minute {
				t.Errorf("finished record TTL = %v, want about %v", ttl, redisstore.RecordTTL)
			}
		}
		stats, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []queue.LaneStats{
			{Lane: queue.LaneTransactional, Sent: 1},
			{Lane: queue.LaneBulk, Dead: 1},
		}
		if diff := cmp.Diff(want, stats); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	})

	t.Run("lease on a missing record creates nothing", func(t *testing.T) {
		ghost := delivery.Entry{Partition: 0, Lane: queue.LaneBulk, StreamID: "1-1", MessageID: queue.MessageID("ghost")}
		if _, err := s.Lease(ctx, ghost, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now()}); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Lease = %v, want ErrNotFound", err)
		}
		if n := rdb.Exists(ctx, redisstore.RecordKey(0, ghost.MessageID), redisstore.MarkKey(0, ghost.MessageID)).Val(); n != 0 {
			t.Error("a stub record or mark was created")
		}
	})
}

func TestStatsCountsWaitingAndPending(t *testing.T) {
	t.Parallel()
	s, _, ctx := newStore(t)
	var msgs []queue.Message
	for i := range 10 {
		msgs = append(msgs, message(fmt.Sprint("m", i), queue.LaneBulk))
	}
	if _, err := s.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	read := 0
	entries, err := s.Read(ctx, 0, "c", 3, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	read += len(entries)
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats[1].OldestAge <= 0 || stats[1].OldestAge > time.Minute {
		t.Errorf("oldest age = %v, want the age of the first pending entry", stats[1].OldestAge)
	}
	stats[1].OldestAge = 0
	want := []queue.LaneStats{{Lane: queue.LaneTransactional}, {Lane: queue.LaneBulk, Waiting: int64(10 - read), Pending: int64(read)}}
	if diff := cmp.Diff(want, stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestGroupsAreRecreatedWhenLost(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	if err := rdb.Del(ctx, redisstore.StreamKey(queue.LaneTransactional, 1), redisstore.StreamKey(queue.LaneBulk, 1)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, 1, "c", 1, 10*time.Millisecond); err == nil {
		t.Error("Read without a group succeeded")
	}
	if _, err := s.Read(ctx, 1, "c", 1, 10*time.Millisecond); err != nil {
		t.Errorf("Read after the groups were recreated = %v", err)
	}
}

func BenchmarkEnqueueBatch100(b *testing.B) {
	s, rdb, ctx := newStore(b)
	batch := make([]queue.Message, 100)
	b.ReportAllocs()
	n := 0
	redis0, go0 := redisCPU(b, rdb), processCPU(b)
	for b.Loop() {
		for i := range batch {
			batch[i] = message(fmt.Sprint("bench:", n), queue.LaneBulk)
			n++
		}
		if _, err := s.Enqueue(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	// CPU per message survives a busy machine better than msgs/s; the
	// process' share includes the test's own Redis client and runtime.
	b.ReportMetric(float64((redisCPU(b, rdb)-redis0).Microseconds())/float64(n), "redis-cpu-µs/msg")
	b.ReportMetric(float64((processCPU(b)-go0).Microseconds())/float64(n), "go-cpu-µs/msg")
}

// Records and entries are found by the partition count: a process started
// with another count would never read some partitions and would look up
// records in the wrong one (dropping their entries as orphans, or queueing a
// known idempotency key a second time). Such a start must fail.
func TestEnsureGroupsRefusesAnotherPartitionCount(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	if _, err := s.Enqueue(ctx, []queue.Message{message("queued-before", queue.LaneBulk)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{partitions - 1, partitions + 1} {
		err := redisstore.New(rdb, n).EnsureGroups(ctx)
		if !errors.Is(err, redisstore.ErrPartitionsChanged) {
			t.Errorf("EnsureGroups with %d partitions on a queue of %d = %v, want ErrPartitionsChanged", n, partitions, err)
		}
	}
	if n := rdb.Exists(ctx, redisstore.StreamKey(queue.LaneBulk, partitions)).Val(); n != 0 {
		t.Error("the refused start created streams")
	}
	if err := redisstore.New(rdb, partitions).EnsureGroups(ctx); err != nil {
		t.Errorf("EnsureGroups with the same count again = %v", err)
	}
}

// The lease counts the attempt; a message cancelled under its lease was
// never attempted, so MarkCancelled takes the attempt back (once, however
// often it is retried).
func TestCancelTakesBackTheLeasedAttempt(t *testing.T) {
	t.Parallel()
	s, _, ctx := newStore(t)
	m := message("cancel-me", queue.LaneBulk)
	if _, err := s.Enqueue(ctx, []queue.Message{m}); err != nil {
		t.Fatal(err)
	}
	p := queue.Partition(m.ID, partitions)
	entries, err := s.Read(ctx, p, "c1", 10, 10*time.Millisecond)
	if err != nil || len(entries) != 1 {
		t.Fatalf("Read = %v, %v; want one entry", entries, err)
	}
	l, err := s.Lease(ctx, entries[0], delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now()})
	if err != nil || l.Result != delivery.LeaseAcquired || l.Attempts != 1 {
		t.Fatalf("Lease = %+v, %v; want acquired, attempt 1", l, err)
	}
	for range 2 {
		if err := s.MarkCancelled(ctx, entries[0], l.Token, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != queue.StateCancelled || got.Attempts != 0 {
		t.Errorf("record = %v with %d attempts; want CANCELLED with 0", got.State, got.Attempts)
	}
}

// Lease reads the recipient's cancel times in the same round trip: a
// bulk-only cancel applies to bulk mail, not transactional; after a Redis
// restart emptied the script cache the script is sent whole.
func TestLeaseReadsTheRecipientsCancels(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	bulk, tx := message("cancel-bulk", queue.LaneBulk), message("cancel-tx", queue.LaneTransactional)
	if _, err := s.Enqueue(ctx, []queue.Message{bulk, tx}); err != nil {
		t.Fatal(err)
	}
	entry := func(m queue.Message) delivery.Entry {
		return delivery.Entry{Partition: queue.Partition(m.ID, partitions), Lane: m.Lane, StreamID: "1-1", MessageID: m.ID}
	}
	req := delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now(), Recipient: "R@example.com"}
	if l, err := s.Lease(ctx, entry(bulk), req); err != nil || !l.CancelledSince.IsZero() {
		t.Fatalf("Lease before any cancel = %+v, %v; want no cancel", l, err)
	}
	at := time.UnixMilli(1_750_000_500_000)
	if err := s.CancelRecipient(ctx, "r@example.com", false, at); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lease(ctx, entry(bulk), req)
	if err != nil || l.Result != delivery.LeaseAcquired || !l.CancelledSince.Equal(at) || l.Attempts != 2 {
		t.Errorf("Lease of bulk after a bulk cancel (script cache flushed) = %+v, %v; want acquired, attempt 2, cancelled at %v", l, err, at)
	}
	l, err = s.Lease(ctx, entry(tx), req)
	if err != nil || l.Result != delivery.LeaseAcquired || !l.CancelledSince.IsZero() {
		t.Errorf("Lease of transactional mail after a bulk-only cancel = %+v, %v; want acquired, no cancel", l, err)
	}
	if err := s.CancelRecipient(ctx, "r@example.com", true, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Lease(ctx, entry(tx), req); err != nil || !l.CancelledSince.Equal(at.Add(time.Second)) {
		t.Errorf("Lease of transactional mail after an all-lanes cancel = %+v, %v; want cancelled at %v", l, err, at.Add(time.Second))
	}
}

// MarkSentAndLease records one message as sent and takes the lease of the
// next (with its recipient's cancels) in one round trip, each part with its
// own answer: the first is SENT and acknowledged, its sent mark set; the
// second is leased with its first attempt counted, and a message whose
// mark says sent is not leased.
func TestMarkSentAndLease(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	first, second, third := message("sal-1", queue.LaneBulk), message("sal-2", queue.LaneBulk), message("sal-3", queue.LaneBulk)
	third.Recipient = "gone@example.com"
	if _, err := s.Enqueue(ctx, []queue.Message{first, second, third}); err != nil {
		t.Fatal(err)
	}
	var entries []delivery.Entry
	for p := range partitions {
		got, err := s.Read(ctx, p, "c1", 10, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, got...)
	}
	byID := map[string]delivery.Entry{}
	for _, e := range entries {
		byID[e.MessageID] = e
	}
	e1, e2, e3 := byID[first.ID], byID[second.ID], byID[third.ID]
	if e1.MessageID == "" || e2.MessageID == "" || e3.MessageID == "" {
		t.Fatalf("read %v; want the three messages", entries)
	}
	l1, err := s.Lease(ctx, e1, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now()})
	if err != nil || l1.Result != delivery.LeaseAcquired {
		t.Fatalf("Lease = %+v, %v", l1, err)
	}
	at := time.Now()
	res := s.MarkSentAndLease(ctx, e1, "250 ok", at, e2, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: at, Recipient: second.Recipient})
	if res.SentErr != nil || res.LeaseErr != nil || res.Lease.Result != delivery.LeaseAcquired || res.Lease.Attempts != 1 || !res.Lease.CancelledSince.IsZero() {
		t.Fatalf("MarkSentAndLease = %+v; want sent, and the next leased with attempt 1, not cancelled", res)
	}
	if got, err := s.GetMessage(ctx, first.ID); err != nil || got.State != queue.StateSent || got.Reply != "250 ok" {
		t.Errorf("first record = %v %q, %v; want SENT with the reply", got.State, got.Reply, err)
	}
	if mark, err := rdb.Get(ctx, redisstore.MarkKey(e1.Partition, first.ID)).Result(); err != nil || mark != "sent" {
		t.Errorf("first mark = %q, %v; want sent", mark, err)
	}
	if mark, err := rdb.Get(ctx, redisstore.MarkKey(e2.Partition, second.ID)).Result(); err != nil || mark != res.Lease.Token {
		t.Errorf("second mark = %q, %v; want the lease token %q", mark, err, res.Lease.Token)
	}
	if n := pendingOf(ctx, t, rdb, e1); n != 0 {
		t.Errorf("first entry still pending; want acknowledged")
	}

	// The second, sent: its record and the third's lease, whose recipient
	// was cancelled after it was queued; then the third again, now marked
	// sent by someone: not leased.
	cancelAt := time.UnixMilli(1_750_000_900_000)
	if err := s.CancelRecipient(ctx, third.Recipient, false, cancelAt); err != nil {
		t.Fatal(err)
	}
	res = s.MarkSentAndLease(ctx, e2, "250 ok", time.Now(), e3, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now(), Recipient: third.Recipient})
	if res.SentErr != nil || res.LeaseErr != nil || res.Lease.Result != delivery.LeaseAcquired || !res.Lease.CancelledSince.Equal(cancelAt) {
		t.Errorf("MarkSentAndLease with a cancelled next recipient = %+v; want acquired, cancelled at %v", res, cancelAt)
	}
	if err := rdb.Set(ctx, redisstore.MarkKey(e3.Partition, third.ID), "sent", 0).Err(); err != nil {
		t.Fatal(err)
	}
	res = s.MarkSentAndLease(ctx, e2, "250 ok", time.Now(), e3, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now()})
	if res.SentErr != nil || res.LeaseErr != nil || res.Lease.Result != delivery.LeaseSent {
		t.Errorf("MarkSentAndLease again, the next marked sent = %+v; want the record kept and the lease refused as sent", res)
	}
	if got, err := s.GetMessage(ctx, second.ID); err != nil || got.State != queue.StateSent || got.Attempts != 1 {
		t.Errorf("second record = %v, %d attempts, %v; want SENT after 1 attempt, counted once", got.State, got.Attempts, err)
	}
}

// pendingOf returns how many times e is pending in its stream (0 or 1).
func pendingOf(ctx context.Context, t *testing.T, rdb redis.UniversalClient, e delivery.Entry) int {
	t.Helper()
	got, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: redisstore.StreamKey(e.Lane, e.Partition), Group: redisstore.Group, Start: e.StreamID, End: e.StreamID, Count: 1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}
