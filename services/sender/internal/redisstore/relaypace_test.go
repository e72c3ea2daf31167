package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// allowedAtOnce asks p for sends to relay until one is refused (at most
// max) and returns how many were allowed and the wait of the refusal.
func allowedAtOnce(ctx context.Context, t *testing.T, p *redisstore.RelayPacer, relay string, max int) (int, time.Duration) {
	t.Helper()
	for i := range max {
		w, err := p.Reserve(ctx, relay)
		if err != nil {
			t.Fatal(err)
		}
		if w > 0 {
			return i, w
		}
	}
	return max, 0
}

// A throttling reply seen by one replica slows the relay for another one
// that never saw it, and only that relay.
func TestRelaySlowdownIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	_, rdb, ctx := newStore(t)
	cfg := redisstore.PacerConfig{MinGap: 200 * time.Millisecond, HalfLife: time.Minute, Refresh: time.Hour}
	a := redisstore.NewRelayPacer(rdb, nil, 0, cfg)
	b := redisstore.NewRelayPacer(rdb, nil, 0, cfg)

	// Unslowed and unlimited: b sends freely, and (Refresh) stops asking.
	if n, _ := allowedAtOnce(ctx, t, b, "relay:25", 50); n != 50 {
		t.Fatalf("unslowed relay: %d of 50 sends allowed at once, want all", n)
	}
	gap, err := a.SlowDown(ctx, "relay:25")
	if err != nil {
		t.Fatal(err)
	}
	if gap != 200*time.Millisecond {
		t.Errorf("first slowdown gap = %v, want MinGap 200ms", gap)
	}
	if gap, _ = a.SlowDown(ctx, "relay:25"); gap < 390*time.Millisecond || gap > 400*time.Millisecond {
		t.Errorf("second slowdown gap = %v, want about 400ms (doubled)", gap)
	}
	// b's Refresh is an hour: it would never ask again, were it not for a
	// new replica (or the Refresh passing). A fresh pacer on the same Redis
	// stands for "another process": it must see the gap at once.
	c := redisstore.NewRelayPacer(rdb, nil, 0, cfg)
	n, wait := allowedAtOnce(ctx, t, c, "relay:25", 10)
	if n != 1 || wait < 300*time.Millisecond || wait > 400*time.Millisecond {
		t.Errorf("slowed relay, another replica: %d sends at once then wait %v, want 1 then about 400ms", n, wait)
	}
	// The spacing is shared: a's next send waits for c's slot too.
	if w, err := a.Reserve(ctx, "relay:25"); err != nil || w < 300*time.Millisecond {
		t.Errorf("a's send right after c's: wait %v (%v), want about 400ms", w, err)
	}
	// Another relay is not slowed.
	if n, _ := allowedAtOnce(ctx, t, c, "other:25", 20); n != 20 {
		t.Errorf("other relay: %d of 20 sends allowed at once, want all", n)
	}
}

// The slowdown ends by itself: the gap halves every HalfLife and is gone
// below MinGap.
func TestRelaySlowdownDecaysWithTime(t *testing.T) {
	t.Parallel()
	_, rdb, ctx := newStore(t)
	cfg := redisstore.PacerConfig{MinGap: 50 * time.Millisecond, HalfLife: 100 * time.Millisecond, Refresh: time.Millisecond}
	p := redisstore.NewRelayPacer(rdb, nil, 0, cfg)
	for range 2 { // 100ms: one half-life above MinGap
		if _, err := p.SlowDown(ctx, "relay:25"); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := allowedAtOnce(ctx, t, p, "relay:25", 5); n != 1 {
		t.Fatalf("just slowed: %d sends at once, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := allowedAtOnce(ctx, t, p, "relay:25", 20)
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slowdown did not end within 5s (half-life 100ms)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Deliveries ease the slowdown (a tenth each), reported with the next
// Reserve rather than written one by one.
func TestRelaySlowdownEasesWithDeliveries(t *testing.T) {
	t.Parallel()
	_, rdb, ctx := newStore(t)
	cfg := redisstore.PacerConfig{MinGap: 200 * time.Millisecond, HalfLife: time.Hour, Refresh: time.Hour}
	a := redisstore.NewRelayPacer(rdb, nil, 0, cfg)
	b := redisstore.NewRelayPacer(rdb, nil, 0, cfg)
	for range 3 { // 800ms
		if _, err := a.SlowDown(ctx, "relay:25"); err != nil {
			t.Fatal(err)
		}
	}
	if _, wait := allowedAtOnce(ctx, t, b, "relay:25", 5); wait < 700*time.Millisecond {
		t.Fatalf("slowed to 800ms: b waits %v", wait)
	}
	// Deliveries while the relay is slowed: 0.9^20 × 800ms ≈ 97ms, below
	// MinGap, so the slowdown is over for every replica.
	for range 20 {
		b.Delivered("relay:25")
	}
	if _, err := b.Reserve(ctx, "relay:25"); err != nil { // reports them
		t.Fatal(err)
	}
	c := redisstore.NewRelayPacer(rdb, nil, 0, cfg)
	if n, _ := allowedAtOnce(ctx, t, c, "relay:25", 20); n != 20 {
		t.Errorf("after 20 deliveries: %d of 20 sends allowed at once, want all (the gap is gone)", n)
	}
}

// Each relay has its own limit, shared by the replicas; a fallback relay
// does not take from the primary's budget.
func TestRelayLimitsArePerRelayAndShared(t *testing.T) {
	t.Parallel()
	_, rdb, ctx := newStore(t)
	limits := map[string]int{"primary:25": 10, "fallback:25": 5}
	a := redisstore.NewRelayPacer(rdb, limits, 0, redisstore.PacerConfig{})
	b := redisstore.NewRelayPacer(rdb, limits, 0, redisstore.PacerConfig{})
	allowed := 0
	for i := range 30 {
		p := a
		if i%2 == 1 {
			p = b
		}
		if w, err := p.Reserve(ctx, "primary:25"); err != nil {
			t.Fatal(err)
		} else if w == 0 {
			allowed++
		}
	}
	// GCRA at 10/s with a burst of 10: about 10 at once, not 20.
	if allowed < 10 || allowed > 12 {
		t.Errorf("primary at 10/s: %d of 30 sends from two replicas allowed at once, want about 10", allowed)
	}
	n, wait := allowedAtOnce(ctx, t, b, "fallback:25", 30)
	if n < 5 || n > 6 {
		t.Errorf("fallback at 5/s after the primary's budget is spent: %d sends at once, want about 5", n)
	}
	if wait <= 0 || wait > 250*time.Millisecond {
		t.Errorf("fallback refusal waits %v, want about 200ms (one slot at 5/s)", wait)
	}
	if n, _ := allowedAtOnce(ctx, t, a, "unlisted:25", 50); n != 50 {
		t.Errorf("unlisted relay with no fallback limit: %d of 50 allowed, want all", n)
	}
}
