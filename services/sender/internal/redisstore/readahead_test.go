package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// TestReadAheadServesEachRecordOnce: Read loads the records of the entries
// it returns; the dispatcher's GetMessage gets each once from there, and
// every later lookup (and every lookup through the Store itself, as the
// API does) sees Redis.
func TestReadAheadServesEachRecordOnce(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	ra := redisstore.NewReadAhead(s)
	var msgs []queue.Message
	for i := 0; len(msgs) < 3; i++ {
		key := fmt.Sprint("ra", i)
		if queue.Partition(queue.MessageID(key), partitions) == 0 {
			msgs = append(msgs, message(key, queue.LaneBulk))
		}
	}
	if _, err := s.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	entries, err := ra.Read(ctx, 0, "c1", 10, 10*time.Millisecond)
	if err != nil || len(entries) != 3 {
		t.Fatalf("Read = %d entries, %v", len(entries), err)
	}
	// Change a record behind the read-ahead's back.
	key := redisstore.RecordKey(0, msgs[0].ID)
	if err := rdb.HSet(ctx, key, "attempts", 7).Err(); err != nil {
		t.Fatal(err)
	}
	api, err := s.GetMessage(ctx, msgs[0].ID)
	if err != nil || api.Attempts != 7 {
		t.Fatalf("the Store's GetMessage = %+v, %v; want Redis' record (7 attempts)", api, err)
	}
	first, err := ra.GetMessage(ctx, msgs[0].ID)
	if err != nil || first.Attempts != 0 || first.Recipient != msgs[0].Recipient {
		t.Fatalf("first lookup = %+v, %v; want the record as read ahead", first, err)
	}
	again, err := ra.GetMessage(ctx, msgs[0].ID)
	if err != nil || again.Attempts != 7 {
		t.Fatalf("second lookup = %+v, %v; want Redis' record", again, err)
	}
	for _, m := range msgs[1:] {
		if got, err := ra.GetMessage(ctx, m.ID); err != nil || got.ID != m.ID {
			t.Fatalf("GetMessage(%s) = %+v, %v", m.ID, got, err)
		}
	}
}
