package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// One run of the finish script for several messages of a partition records
// each as a run of its own would: SENT in both lanes (one of them after a
// delayed retry), DEAD with a failure report, CANCELLED with the attempt
// given back; every entry acknowledged, every counter counted.
func TestOneFinishRunServesEachCall(t *testing.T) {
	rdb := redistest.Start(t).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := New(rdb, 1)
	if err := s.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_750_000_000_000)
	msg := func(key string, lane queue.Lane) queue.Message {
		return queue.Message{ID: queue.MessageID(key), IdempotencyKey: key, Recipient: key + "@example.com", Lane: lane,
			ContentID: "c", State: queue.StateQueued, Created: now, Updated: now}
	}
	msgs := []queue.Message{msg("tx", queue.LaneTransactional), msg("bulk", queue.LaneBulk), msg("dead", queue.LaneBulk),
		msg("cancelled", queue.LaneBulk), msg("retried", queue.LaneBulk)}
	if _, err := s.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]delivery.Entry {
		t.Helper()
		entries, err := s.Read(ctx, 0, "c1", 10, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]delivery.Entry{}
		for _, e := range entries {
			out[e.MessageID] = e
		}
		return out
	}
	lease := func(e delivery.Entry) string {
		t.Helper()
		l, err := s.Lease(ctx, e, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: now})
		if err != nil || l.Result != delivery.LeaseAcquired {
			t.Fatalf("lease %s = %+v, %v", e.MessageID, l, err)
		}
		return l.Token
	}
	entries := read()
	tokens := map[string]string{}
	for _, m := range msgs {
		tokens[m.ID] = lease(entries[m.ID])
	}
	retried := entries[msgs[4].ID]
	if err := s.Retry(ctx, retried, tokens[retried.MessageID], delivery.Retry{State: queue.StateRetrying, Reason: "451", Due: now}, now); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PromoteDue(ctx, 0, now, 10); err != nil || n != 1 {
		t.Fatalf("PromoteDue = %d, %v", n, err)
	}
	// The retried message waits in its stream again and still in the delayed
	// set's place: 'next' is set. Take it again.
	retried = read()[retried.MessageID]
	tokens[retried.MessageID] = lease(retried)
	if err := rdb.ZAdd(ctx, DelayKey(queue.LaneBulk, 0), redisZ(now, retried.MessageID)).Err(); err != nil {
		t.Fatal(err)
	}

	at := now.Add(time.Second)
	// Texts over 64 bytes, stored in pieces (recordtext.go).
	txReply := "250 2.0.0 Ok: queued as 4XyZ " + strings.Repeat("t", 80)
	deadReason := "550 5.1.1 <dead@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
	calls := []*scriptCall{
		s.finishCall(entries[msgs[0].ID], queue.StateSent, "", "", txReply, false, false, at),
		s.finishCall(entries[msgs[1].ID], queue.StateSent, "", "", "250 ok bulk", false, false, at),
		s.finishCall(entries[msgs[2].ID], queue.StateDead, tokens[msgs[2].ID], deadReason, "", true, false, at),
		s.finishCall(entries[msgs[3].ID], queue.StateCancelled, tokens[msgs[3].ID], "cancelled", "", false, true, at),
		s.finishCall(retried, queue.StateSent, "", "", "250 ok retried", false, false, at),
		s.finishCall(entries[msgs[1].ID], queue.StateSent, "", "", "250 again", false, false, at), // a retried call
	}
	sendBatch(ctx, rdb, calls)
	for i, c := range calls {
		if c.err != nil {
			t.Fatalf("call %d: %v", i, c.err)
		}
	}

	want := map[string]struct {
		state    queue.State
		attempts int
		mark     string
	}{
		msgs[0].ID: {queue.StateSent, 1, "sent"},
		msgs[1].ID: {queue.StateSent, 1, "sent"},
		msgs[2].ID: {queue.StateDead, 1, ""},
		msgs[3].ID: {queue.StateCancelled, 0, ""},
		msgs[4].ID: {queue.StateSent, 2, "sent"},
	}
	for id, w := range want {
		m, err := s.GetMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		mark := rdb.Get(ctx, MarkKey(0, id)).Val()
		if m.State != w.state || m.Attempts != w.attempts || mark != w.mark {
			t.Errorf("%s: state %v, attempts %d, mark %q; want %v, %d, %q", id, m.State, m.Attempts, mark, w.state, w.attempts, w.mark)
		}
		if ttl := rdb.TTL(ctx, RecordKey(0, id)).Val(); ttl <= 0 {
			t.Errorf("%s: record TTL %v, want one", id, ttl)
		}
	}
	if reply := rdb.HGet(ctx, RecordKey(0, msgs[1].ID), "reply").Val(); reply != "250 ok bulk" {
		t.Errorf("reply of the message finished twice = %q, want the first", reply)
	}
	if m, err := s.GetMessage(ctx, msgs[0].ID); err != nil || m.Reply != txReply {
		t.Errorf("long reply read as %q, %v; want %q", m.Reply, err, txReply)
	}
	if m, err := s.GetMessage(ctx, msgs[2].ID); err != nil || m.LastError != deadReason {
		t.Errorf("long reason read as %q, %v; want %q", m.LastError, err, deadReason)
	}
	for _, id := range []string{msgs[0].ID, msgs[2].ID} {
		if enc := rdb.ObjectEncoding(ctx, RecordKey(0, id)).Val(); enc != "listpack" {
			t.Errorf("%s: record encoding %q, want listpack", id, enc)
		}
	}
	if n := rdb.HExists(ctx, RecordKey(0, msgs[4].ID), "next").Val(); n {
		t.Error("the retried message still has its next attempt's time")
	}
	if n := rdb.ZCard(ctx, DelayKey(queue.LaneBulk, 0)).Val(); n != 0 {
		t.Errorf("delayed set holds %d, want 0", n)
	}
	stats := rdb.HGetAll(ctx, StatsKey(0)).Val()
	for k, v := range map[string]string{"tx:sent": "1", "bulk:sent": "2", "bulk:dead": "1", "bulk:cancelled": "1"} {
		if stats[k] != v {
			t.Errorf("counter %s = %q, want %s (all: %v)", k, stats[k], v, stats)
		}
	}
	for _, lane := range queue.Lanes() {
		if p := rdb.XPending(ctx, StreamKey(lane, 0), Group).Val(); p.Count != 0 {
			t.Errorf("%v: %d entries pending, want 0", lane, p.Count)
		}
	}
	if out := rdb.XRange(ctx, OutboxKey(0), "-", "+").Val(); len(out) != 1 || out[0].Values["rcpt"] != msgs[2].Recipient {
		t.Errorf("outbox = %v, want one report for %s", out, msgs[2].Recipient)
	}
	if rdb.ZScore(ctx, DeadKey(0), msgs[2].ID).Err() != nil {
		t.Error("the dead message is not in the dead index")
	}
}

// One run of the lease script answers each call as a run of its own would:
// the second consumer asking for the same message finds it held, a missing
// record is missing, a sent message is sent.
func TestOneLeaseRunServesEachCall(t *testing.T) {
	rdb := redistest.Start(t).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := New(rdb, 1)
	now := time.UnixMilli(1_750_000_000_000)
	m := queue.Message{ID: queue.MessageID("k"), IdempotencyKey: "k", Recipient: "r@example.com", Lane: queue.LaneBulk,
		ContentID: "c", State: queue.StateQueued, Created: now, Updated: now}
	if _, err := s.Enqueue(ctx, []queue.Message{m}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, MarkKey(0, queue.MessageID("s")), "sent", 0).Err(); err != nil {
		t.Fatal(err)
	}
	entry := func(id string) delivery.Entry {
		return delivery.Entry{Partition: 0, Lane: queue.LaneBulk, StreamID: "1-1", MessageID: id}
	}
	req := func(consumer string) delivery.LeaseRequest {
		return delivery.LeaseRequest{Consumer: consumer, Duration: time.Minute, At: now}
	}
	call := func(e delivery.Entry, r delivery.LeaseRequest) *scriptCall {
		c, _ := s.leaseCall(ctx, e, r)
		return c
	}
	calls := []*scriptCall{
		call(entry(m.ID), req("c1")),
		call(entry(m.ID), req("c2")),
		call(entry(m.ID), req("c1")), // its own lease again: a new one
		call(entry(queue.MessageID("missing")), req("c1")),
		call(entry(queue.MessageID("s")), req("c1")),
	}
	sendBatch(ctx, rdb, calls)
	var got []string
	for _, c := range calls {
		l, err := parseLease(entry("x"), c.res)
		switch {
		case c.err != nil:
			got = append(got, "error "+c.err.Error())
		case err != nil:
			got = append(got, "err")
		default:
			got = append(got, fmtLease(l))
		}
	}
	want := []string{"acquired sending:c1:1 1", "held", "acquired sending:c1:2 2", "err", "sent"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func fmtLease(l delivery.Lease) string {
	switch l.Result {
	case delivery.LeaseAcquired:
		return "acquired " + l.Token + " " + strconv.Itoa(l.Attempts)
	case delivery.LeaseHeld:
		return "held"
	case delivery.LeaseSent:
		return "sent"
	}
	return "?"
}

func redisZ(at time.Time, id string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: id}
}
