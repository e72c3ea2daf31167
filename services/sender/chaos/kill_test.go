package chaos_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Chaos 1: kill -9 of the sender process three times during a 5,000
// message send, restarting it each time. Nothing may be lost; a kill may
// duplicate at most the messages in flight at that moment (one per
// worker, and only if the relay had answered the final dot but the sent
// mark was not yet written).
func TestKill9DuringASend(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t, 4*time.Minute)
	const n, workers = 5000, 4
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("kill:%d", i)
	}
	w.enqueue(ctx, n, func(i int) string { return keys[i] }, func(i int) string { return fmt.Sprintf("r%d@example.com", i) })

	p := w.start("sender-0", map[string]string{"SENDER_WORKERS": fmt.Sprint(workers)})
	kills := 0
	for _, at := range []int{800, 2000, 3200} {
		w.waitFor(ctx, fmt.Sprintf("%d recipients served", at), func() bool { return w.relay.distinct() >= at })
		p.kill(t)
		kills++
		p = w.start(fmt.Sprintf("sender-%d", kills), map[string]string{"SENDER_WORKERS": fmt.Sprint(workers)})
	}
	w.waitFor(ctx, "every recipient served", func() bool { return w.relay.distinct() == n })
	w.waitFor(ctx, "every record SENT", func() bool { return w.states(ctx, keys)[queue.StateSent] == n })

	got := w.relay.received()
	total := 0
	for i := range n {
		c := got[fmt.Sprintf("r%d@example.com", i)]
		if c == 0 {
			t.Errorf("r%d@example.com got nothing: lost", i)
		}
		total += c
	}
	dups := duplicates(got)
	t.Logf("%d kills: %d messages delivered for %d, %d duplicates %v", kills, total, n, total-n, dups)
	if total-n > kills*workers {
		t.Errorf("%d duplicates after %d kills, want at most %d (the messages in flight)", total-n, kills, kills*workers)
	}
}
