package chaos_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Chaos 4: two sender processes on one queue; one is stopped (SIGSTOP) in
// the middle of a send, past its lease, while the other takes its work
// over; then it is resumed. No message may be sent by both.
//
// The stopped process talks to its own relay, which holds its first RCPT
// reply: so the stop lands, deterministically, inside an SMTP transaction
// before the final dot, the case where a resumed process would otherwise
// finish a send that the other one already made.
func TestStoppedPastTheLeaseSendsNothingTwice(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t, 2*time.Minute)
	const n = 600
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("stop:%d", i)
	}
	w.enqueue(ctx, n, func(i int) string { return keys[i] }, func(i int) string { return fmt.Sprintf("s%d@example.com", i) })

	relayA := startRelay(t)
	held := make(chan string, 1)
	release := make(chan struct{})
	first := true
	relayA.setFault(func(stage, rcpt string) error {
		if stage != "RCPT" {
			return nil
		}
		relayA.mu.Lock()
		hold := first
		first = false
		relayA.mu.Unlock()
		if hold {
			held <- rcpt
			<-release
		}
		return nil
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	a := w.start("sender-a", map[string]string{"SENDER_SMTP_ADDR": relayA.addr, "SENDER_WORKERS": "1"})
	var victim string
	select {
	case victim = <-held:
	case <-ctx.Done():
		t.Fatalf("sender-a never sent\n%s", w.logTail())
	}
	a.signal(t, syscall.SIGSTOP)
	stoppedAt := time.Now()

	// The other process takes the stopped one's work over once its lease
	// has ended: the moment a duplicate would be made.
	w.start("sender-b", nil)
	var victimKey string
	for i := range n {
		if fmt.Sprintf("s%d@example.com", i) == victim {
			victimKey = keys[i]
		}
	}
	w.waitFor(ctx, "sender-b to send the stopped process's message", func() bool {
		m, err := w.store.GetMessage(ctx, queue.MessageID(victimKey))
		return err == nil && m.State == queue.StateSent
	})
	t.Logf("sender-b sent %s %v after sender-a was stopped", victim, time.Since(stoppedAt).Round(time.Millisecond))
	close(release) // relay A answers the RCPT; sender-a is still stopped
	a.signal(t, syscall.SIGCONT)

	w.waitFor(ctx, "every record SENT", func() bool { return w.states(ctx, keys)[queue.StateSent] == n })
	gotA, gotB := relayA.received(), w.relay.received()
	both := map[string]int{}
	for rcpt, c := range gotA {
		both[rcpt] += c
	}
	for rcpt, c := range gotB {
		both[rcpt] += c
	}
	for i := range n {
		if both[fmt.Sprintf("s%d@example.com", i)] == 0 {
			t.Errorf("s%d@example.com got nothing: lost", i)
		}
	}
	if dups := duplicates(both); len(dups) > 0 {
		t.Errorf("sent twice: %v", dups)
	}
	if gotA[victim] != 0 {
		t.Errorf("the resumed process finished its send of %s after its lease", victim)
	}
	t.Logf("relay A (the stopped process) got %d messages, relay B %d", len(gotA), len(gotB))
}
