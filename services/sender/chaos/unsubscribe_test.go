package chaos_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Chaos 5: an unsubscribe (CancelRecipient) in the middle of a bulk send:
// nothing more goes to that address, apart from a send already past its
// cancel check when the call returned (at most one per worker).
func TestUnsubscribeMidSend(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t, 2*time.Minute)
	const n, workers = 2000, 4
	const leaver = "leaver@example.com"
	keys := make([]string, n)
	rcpt := func(i int) string {
		if i%40 == 39 { // 50 messages to the leaver, spread over the send
			return leaver
		}
		return fmt.Sprintf("u%d@example.com", i)
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("unsub:%d", i)
	}
	w.enqueue(ctx, n, func(i int) string { return keys[i] }, rcpt)
	w.start("sender-unsub", map[string]string{"SENDER_WORKERS": fmt.Sprint(workers)})

	w.waitFor(ctx, "a quarter of the send", func() bool { return w.relay.distinct() >= n/4 })
	if _, err := queue.NewService(w.store, nil).CancelRecipient(ctx, leaver, false); err != nil {
		t.Fatal(err)
	}
	atCancel := w.relay.received()[leaver]

	w.waitFor(ctx, "every record finished", func() bool {
		st := w.states(ctx, keys)
		return st[queue.StateSent]+st[queue.StateCancelled] == n
	})
	got := w.relay.received()
	after := got[leaver] - atCancel
	st := w.states(ctx, keys)
	t.Logf("leaver: %d mails before the cancel, %d after (in flight), %d cancelled", atCancel, after, st[queue.StateCancelled])
	if after > workers {
		t.Errorf("%d mails to %s after CancelRecipient returned, want at most %d (sends already past the check)", after, leaver, workers)
	}
	if atCancel+after+st[queue.StateCancelled] != n/40 {
		t.Errorf("leaver: %d sent + %d cancelled, want %d messages accounted for", atCancel+after, st[queue.StateCancelled], n/40)
	}
	if st[queue.StateCancelled] == 0 {
		t.Error("nothing was cancelled")
	}
	for i := range n {
		if r := rcpt(i); r != leaver && got[r] != 1 {
			t.Errorf("%s got %d mails, want 1", r, got[r])
		}
	}
}
