package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// Chaos 3: a relay that answers 10 % of transactions with 4xx, drops
// connections before and after the final dot, stores some messages and
// then stalls past the SMTP timeout, and refuses some recipients with 550.
// Every deliverable message is delivered; an unknown outcome is resent at
// most once; the 550s are dead-lettered and queued for the subscriber
// service; the backoff shows in the status records.
func TestSMTPFaults(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t, 3*time.Minute)
	const n = 1000
	rcpt := func(i int) string { return fmt.Sprintf("f%d@example.com", i) }
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("fault:%d", i)
	}
	rejected := func(i int) bool { return i%50 == 7 } // 550 at RCPT, always
	stalled := func(i int) bool { return i%100 == 3 } // stored, then no reply (first time)
	deferred := func(i int) bool { return i%97 == 5 } // 450 at RCPT, first two times
	index := map[string]int{}
	for i := range n {
		index[rcpt(i)] = i
	}

	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]int{} // RCPTs per recipient
	stalls := map[string]bool{}
	w.relay.setFault(func(stage, to string) error {
		mu.Lock()
		defer mu.Unlock()
		roll := rng.Float64()
		switch stage {
		case "MAIL":
			if roll < 0.02 {
				return errDrop // before the final dot
			}
		case "RCPT":
			i := index[to]
			seen[to]++
			switch {
			case rejected(i):
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case deferred(i) && seen[to] <= 2:
				return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
			case roll < 0.07:
				return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "try again"}
			case roll < 0.10:
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "slow down"}
			}
		case "DATA":
			if roll < 0.02 {
				return errDrop // after the final dot, not stored
			}
		}
		return nil
	})
	w.relay.setStall(func(to string) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if !stalled(index[to]) || stalls[to] {
			return 0
		}
		stalls[to] = true
		return 1500 * time.Millisecond // past SENDER_SMTP_TIMEOUT (1s)
	})
	w.enqueue(ctx, n, func(i int) string { return keys[i] }, rcpt)
	w.start("sender-faults", nil)

	// The backoff is visible while a deferred message waits.
	backoffSeen := false
	watched := keys[5] // deferred(5)
	w.waitFor(ctx, "every deliverable recipient served", func() bool {
		if !backoffSeen {
			if m, err := w.store.GetMessage(ctx, queue.MessageID(watched)); err == nil &&
				m.State == queue.StateRetrying && m.NextAttempt.After(m.Updated) && m.LastError != "" {
				backoffSeen = true
			}
		}
		return w.relay.distinct() == n-n/50
	})
	w.waitFor(ctx, "every record finished", func() bool {
		st := w.states(ctx, keys)
		return st[queue.StateSent]+st[queue.StateDead] == n
	})

	got := w.relay.received()
	unknownResends := 0
	for i := range n {
		c := got[rcpt(i)]
		switch {
		case rejected(i):
			if c != 0 {
				t.Errorf("%s (550) got %d mails", rcpt(i), c)
			}
		case stalled(i):
			if c < 1 || c > 2 {
				t.Errorf("%s (stored, then stalled) got %d mails, want 1 or 2 (an unknown outcome is resent at most once)", rcpt(i), c)
			}
			unknownResends += c - 1
		case c != 1:
			t.Errorf("%s got %d mails, want 1", rcpt(i), c)
		}
	}
	t.Logf("unknown outcomes resent: %d of %d stalled messages", unknownResends, n/100)

	st := w.states(ctx, keys)
	if st[queue.StateDead] != n/50 {
		t.Errorf("%d DEAD records, want %d (the 550s)", st[queue.StateDead], n/50)
	}
	reported := outboxRecipients(ctx, t, w)
	for i := range n {
		if rejected(i) && !reported[rcpt(i)] {
			t.Errorf("the 550 for %s was not queued for the subscriber service", rcpt(i))
		}
	}
	if len(reported) != n/50 {
		t.Errorf("%d delivery failures queued for the subscriber service, want %d", len(reported), n/50)
	}
	m, err := w.store.GetMessage(ctx, queue.MessageID(watched))
	if err != nil {
		t.Fatal(err)
	}
	if !backoffSeen || m.Attempts < 3 {
		t.Errorf("deferred message: backoff seen %v, %d attempts; want RETRYING with a next attempt, then 3+ attempts", backoffSeen, m.Attempts)
	}
	for i := range n {
		if !stalled(i) {
			continue
		}
		m, err := w.store.GetMessage(ctx, queue.MessageID(keys[i]))
		if err == nil && got[rcpt(i)] == 2 && m.UnknownOutcomes < 1 {
			t.Errorf("%s was resent but its record shows no unknown outcome", rcpt(i))
		}
	}
}

// outboxRecipients reads the delivery failures waiting for the subscriber
// service.
func outboxRecipients(ctx context.Context, t *testing.T, w *world) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for p := range partitions {
		entries, err := w.rdb.XRange(ctx, redisstore.OutboxKey(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if r, ok := e.Values["rcpt"].(string); ok {
				out[r] = true
			}
		}
	}
	return out
}
