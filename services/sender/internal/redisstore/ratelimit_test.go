package redisstore_test

import (
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// The limits are shared: two limiters (two replicas) on one Redis take
// from the same budget.
func TestRateLimiterIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	_, rdb, ctx := newStore(t)
	a := redisstore.NewRateLimiter(rdb, 0, 10, "relay:25")
	b := redisstore.NewRateLimiter(rdb, 0, 10, "relay:25")
	allowed := 0
	var wait time.Duration
	for i := range 30 {
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
	// GCRA at 10/s with a burst of 10: about 10 at once, not 20.
	if allowed < 10 || allowed > 12 {
		t.Errorf("%d of 30 sends allowed at once by two replicas at 10/s, want about 10", allowed)
	}
	if wait <= 0 || wait > 200*time.Millisecond {
		t.Errorf("a refused send waits %v, want about 100ms (one slot at 10/s)", wait)
	}
	if w, err := redisstore.NewRateLimiter(rdb, 0, 0, "x").Reserve(ctx); w != 0 || err != nil {
		t.Errorf("no limit: %v, %v", w, err)
	}
}
