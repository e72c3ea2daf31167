package senderd_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// enqueueDirect queues transactional messages straight into the store
// (no service needs to be running).
func (h *harness) enqueueDirect(ctx context.Context, keys ...string) {
	h.t.Helper()
	store := redisstore.New(h.rdb, 2)
	if err := store.EnsureGroups(ctx); err != nil {
		h.t.Fatal(err)
	}
	var batch []queue.NewMessage
	for _, key := range keys {
		batch = append(batch, queue.NewMessage{
			IdempotencyKey: key, Recipient: key + "@example.com",
			Lane: queue.LaneTransactional, Content: &queue.Content{Subject: "s", Text: "t"},
		})
	}
	if _, err := queue.NewService(store, nil).Enqueue(ctx, batch); err != nil {
		h.t.Fatal(err)
	}
}

// The adaptive slowdown is shared: replica A meets a relay that answers
// 421 to its first six transactions; replica B, started afterwards, never
// sees a throttling reply, yet spaces its sends to that relay by the gap A
// recorded. Per-process state would let B send its batch at once.
func TestThrottlingSeenByOneReplicaSlowsAnother(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := testContext(t)
	var f faults
	const throttles = 6
	h.mail.SetFault(f.failFirst(mailcatcher.StageRcpt, throttles,
		&smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "slow down"}))
	// Gaps double from 20ms up to min(10s, SENDER_RETRY_MAX_DELAY) = 2s.
	env := map[string]string{"SENDER_RETRY_MAX_DELAY": "2s", "SENDER_WORKERS": "4"}

	stopA := h.startReplica("replica-a", env)
	h.enqueueDirect(ctx, "throttled")
	if _, err := h.mail.WaitFor(ctx, mailcatcher.To("throttled@example.com")); err != nil {
		t.Fatalf("replica A never delivered through the throttling: %v", err)
	}
	if n := f.count(mailcatcher.StageRcpt); n != throttles+1 {
		t.Fatalf("the relay saw %d RCPTs, want %d throttled and one accepted", n, throttles)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}

	// 20ms doubled five times is 640ms, less a tenth for A's one delivery
	// and a little decay (half-life 10s): B should wait about half a
	// second between sends.
	const n = 4
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("after-%d", i))
	}
	h.enqueueDirect(ctx, keys...)
	started := time.Now()
	h.startReplica("replica-b", env)
	var got []time.Time
	for _, key := range keys {
		m, err := h.mail.WaitFor(ctx, mailcatcher.To(key+"@example.com"))
		if err != nil {
			t.Fatalf("replica B never delivered %s: %v", key, err)
		}
		got = append(got, m.Received)
	}
	if c := f.count(mailcatcher.StageRcpt); c != throttles+1+n {
		t.Fatalf("the relay saw %d RCPTs in all, want %d: B must not have met a throttling reply itself", c, throttles+1+n)
	}
	slices.SortFunc(got, time.Time.Compare)
	span := got[n-1].Sub(got[0])
	t.Logf("replica B delivered %d messages over %v (started %v before the first)", n, span, got[0].Sub(started))
	if min := time.Duration(n-1) * 300 * time.Millisecond; span < min {
		t.Errorf("replica B sent %d messages to the throttled relay within %v, want them spaced (at least %v in all)", n, span, min)
	}
}

// A fallback relay has its own messages/s limit: with the primary down,
// sends to the fallback keep to SENDER_SMTP_FALLBACK_RATE_LIMITS (5/s, a
// burst of 5), not to the primary's generous limit.
func TestFallbackRelayKeepsItsOwnRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := testContext(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	_ = lis.Close() // nothing listens there: the primary is down

	const n = 12
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("fallback-%d", i))
	}
	h.enqueueDirect(ctx, keys...)
	h.startReplica("replica-a", map[string]string{
		"SENDER_SMTP_ADDR":                 down,
		"SENDER_SMTP_RATE_LIMIT":           "1000",
		"SENDER_SMTP_FALLBACK_ADDRS":       h.mail.Addr(),
		"SENDER_SMTP_FALLBACK_RATE_LIMITS": "5",
		"SENDER_WORKERS":                   "4",
	})
	var got []time.Time
	for _, key := range keys {
		m, err := h.mail.WaitFor(ctx, mailcatcher.To(key+"@example.com"))
		if err != nil {
			t.Fatalf("%s never reached the fallback relay: %v", key, err)
		}
		got = append(got, m.Received)
	}
	slices.SortFunc(got, time.Time.Compare)
	span := got[n-1].Sub(got[0])
	t.Logf("%d messages through the fallback over %v", n, span)
	// 5 at once, then one every 200ms: the 12th about 1.4s after the first.
	if min := 1100 * time.Millisecond; span < min {
		t.Errorf("%d messages reached the fallback within %v, want at least %v at 5/s", n, span, min)
	}
}
