package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// The limits are shared: two limiters (two replicas) on one Redis take
// from the same budget. GCRA at 10/s with a burst of 10 lets 10 through at
// once and then one more every 100 ms, so how many of 30 sends pass
// depends on how long the 30 requests took (long on a starved CPU): the
// bound is derived from the window measured around them. Two separate
// budgets would pass at least 20 however long it took, so the check tells
// them apart as long as the window is under 0.9 s; a longer one (a stalled
// machine) is measured again on a fresh key.
func TestRateLimiterIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	_, rdb, ctx := newStore(t)
	const rate, sends = 10, 30
	interval := time.Second / rate
	for try := 1; ; try++ {
		relay := fmt.Sprintf("relay:%d", try)
		a := redisstore.NewRateLimiter(rdb, 0, rate, relay)
		b := redisstore.NewRateLimiter(rdb, 0, rate, relay)
		allowed := 0
		var wait time.Duration
		start := time.Now()
		for i := range sends {
			l := a
			if i%2 == 1 {
				l = b
			}
			w, err := l.Reserve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if w == 0 {
				allowed++
			} else {
				wait = w
			}
		}
		window := time.Since(start)
		// Redis's clock moved less than window between the first request
		// and the last; one more for a slot that falls due on the edge.
		most := rate + int(window/interval) + 1
		if most >= 2*rate && try < 5 {
			t.Logf("try %d: the %d requests took %v, too long to tell one budget from two; again", try, sends, window)
			continue
		}
		if allowed < rate || allowed > most {
			t.Errorf("%d of %d sends allowed by two replicas at %d/s within %v, want %d to %d (one shared burst of %d, plus one per %v elapsed)",
				allowed, sends, rate, window, rate, most, rate, interval)
		}
		if allowed < sends && (wait <= 0 || wait > 2*interval) {
			t.Errorf("a refused send waits %v, want about %v (one slot at %d/s)", wait, interval, rate)
		}
		break
	}
	if w, err := redisstore.NewRateLimiter(rdb, 0, 0, "x").Reserve(ctx); w != 0 || err != nil {
		t.Errorf("no limit: %v, %v", w, err)
	}
}
