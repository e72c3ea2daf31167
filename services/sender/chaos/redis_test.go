package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Chaos 2: kill -9 of redis-server (AOF on, appendfsync always: the
// setting for no acknowledged loss, docs/operations.md) during an enqueue
// and again during the send, restarting it each time. No acknowledged
// Enqueue is lost, every message is delivered, and no sent mark is lost
// (no duplicates). With everysec, Redis may postpone the AOF write by up to
// 2 s while it still answers, so a kill can lose the last acknowledged
// writes: marks (duplicates) and even enqueues.
func TestKill9OfRedis(t *testing.T) {
	w := newWorld(t, redistest.WithAppendFsync("always"))
	ctx := testContext(t, 3*time.Minute)
	const n, batch = 3000, 100
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("redis:%d", i)
	}
	rcpt := func(i int) string { return fmt.Sprintf("k%d@example.com", i) }
	w.start("sender-redis", nil)
	svc := queue.NewService(w.store, nil)
	content, err := svc.PutContent(ctx, queue.Content{Subject: "s {{name}}", Text: "t {{name}}"})
	if err != nil {
		t.Fatal(err)
	}

	// Enqueue in batches, retrying a failed batch (Enqueue is idempotent)
	// until Redis takes it; count the acknowledged ones.
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for start := 0; start < n; start += batch {
			var msgs []queue.NewMessage
			for i := start; i < start+batch; i++ {
				msgs = append(msgs, queue.NewMessage{IdempotencyKey: keys[i], Recipient: rcpt(i), Lane: queue.LaneBulk,
					ContentID: content, Variables: map[string]string{"name": fmt.Sprint(i)}, ListUnsubscribeURL: "https://x.example/u"})
			}
			for {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := svc.Enqueue(cctx, msgs)
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			acked.Add(batch)
		}
	})
	w.waitFor(ctx, "a third of the batches acknowledged", func() bool { return acked.Load() >= n/3 })
	w.redis.Kill() // during the enqueue
	killedAt := acked.Load()
	w.redis.Restart()
	wg.Wait()
	if acked.Load() != n {
		t.Fatalf("only %d of %d messages were acknowledged", acked.Load(), n)
	}
	for _, k := range keys[:killedAt] {
		if _, err := w.store.GetMessage(ctx, queue.MessageID(k)); err != nil {
			t.Fatalf("%s was acknowledged before the kill and is gone: %v", k, err)
		}
	}

	w.waitFor(ctx, "half of the recipients served", func() bool { return w.relay.distinct() >= n/2 })
	w.redis.Kill() // during the send
	w.redis.Restart()

	w.waitFor(ctx, "every recipient served", func() bool { return w.relay.distinct() == n })
	w.waitFor(ctx, "every record SENT", func() bool { return w.states(ctx, keys)[queue.StateSent] == n })
	got := w.relay.received()
	total := 0
	for i := range n {
		total += got[rcpt(i)]
	}
	t.Logf("2 Redis kills: %d acknowledged enqueues kept, %d messages delivered for %d", n, total, n)
	if dups := duplicates(got); len(dups) > 0 {
		t.Errorf("duplicates after Redis kills: %v", dups)
	}
}
