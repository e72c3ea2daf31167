package chaos_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Chaos 1 (issue #8): kill -9 of the sender process three times during a
// 5,000 message send, restarting it each time. Nothing may be lost.
//
// What bounds the duplicates (DESIGN §4, docs/delivery.md): a message is
// sent again only if the relay stored it and the process died before the
// sent mark was written (between the relay's 250 and the finishing script
// right after it). A worker takes one message at a time and waits for its
// mark before it takes the next, so at most one message per worker is in
// that window. The bound is per worker, not per SMTP connection: with
// SENDER_SMTP_CONNECTIONS set, a worker borrows a pooled connection for one
// message and hands it back as soon as the send returns, before it writes
// the mark (the pool's connections are not Reusable, so handle closes them
// before outcome), and another worker may meanwhile have its own message
// stored over that same connection. One kill therefore costs at most
// SENDER_WORKERS extra copies, however many connections there are; the
// issue's "duplicates ≤ kills" is that bound for a single worker.
//
// Both tests check the promise itself:
//
//   - every extra copy is attributable to one kill: the relay stored the
//     earlier copy before that kill and less than a lease before it (a
//     worker writes the mark right after the reply, well within its lease,
//     unless it died), and the later copy after it;
//   - no kill accounts for more extra copies than there are workers.
//
// With 4 workers the total against the "≤ kills" is only reported:
// a kill that catches two workers between a 250 and their marks
// legitimately costs two. With one worker it is enforced.

// TestKill9DuringASend runs the send with 4 workers (the default) and holds
// each kill to at most one extra copy per worker.
func TestKill9DuringASend(t *testing.T) {
	killDuringASend(t, 4)
}

// TestKill9DuringASendOneWorker runs the send with a single worker (one
// SMTP connection) and enforces issue #8's literal bar: duplicates ≤ kills.
func TestKill9DuringASendOneWorker(t *testing.T) {
	dups, kills := killDuringASend(t, 1)
	if dups > kills {
		t.Errorf("%d duplicates for %d kills with one worker, want at most %d (issue #8)", dups, kills, kills)
	}
}

// killDuringASend sends 5,000 messages with the given number of workers,
// kills the sender process with SIGKILL three times during the send and
// restarts it each time, checks that nothing was lost, that every
// duplicate is attributable to a kill and that no kill cost more than one
// per worker, and returns the duplicates and the kills.
func killDuringASend(t *testing.T, workers int) (dups, kills int) {
	t.Helper()
	w := newWorld(t)
	ctx := testContext(t, 4*time.Minute)
	const n = 5000
	const lease = 6 * time.Second // SENDER_LEASE in world.start
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("kill:%d", i)
	}
	w.enqueue(ctx, n, func(i int) string { return keys[i] }, func(i int) string { return fmt.Sprintf("r%d@example.com", i) })

	env := map[string]string{"SENDER_WORKERS": fmt.Sprint(workers)}
	p := w.start("sender-0", env)
	var killedAt []time.Time
	for _, at := range []int{800, 2000, 3200} {
		w.waitFor(ctx, fmt.Sprintf("%d recipients served", at), func() bool { return w.relay.distinct() >= at })
		p.kill(t)
		killedAt = append(killedAt, time.Now())
		p = w.start(fmt.Sprintf("sender-%d", len(killedAt)), env)
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
	perKill := make([]int, len(killedAt))
	for rcpt, times := range w.relay.storedAt() {
		for j := range len(times) - 1 {
			k := killBetween(killedAt, times[j], times[j+1], lease)
			if k < 0 {
				t.Errorf("%s: copy %d stored at %s and copy %d at %s, with no kill between them within a lease of the first: a duplicate the protocol does not allow",
					rcpt, j+1, times[j].Format(time.StampMilli), j+2, times[j+1].Format(time.StampMilli))
				continue
			}
			perKill[k]++
		}
	}
	dups = total - n
	t.Logf("SENDER_WORKERS=%d, %d kills: %d messages delivered for %d, %d duplicates (per kill %v; the issue's bar is ≤ %d, the protocol's ≤ %d per kill) %v",
		workers, len(killedAt), total, n, dups, perKill, len(killedAt), workers, duplicates(got))
	for k, c := range perKill {
		if c > workers {
			t.Errorf("kill %d duplicated %d messages, want at most %d (one in flight per worker)", k+1, c, workers)
		}
	}
	return dups, len(killedAt)
}

// killBetween returns the index of the kill after the stored copy at
// first (by less than lease) and before the copy at next, or -1. A kill's
// time is taken once the process is gone; the relay may still be reading
// the final dot the process wrote just before (on a loaded machine, a
// little later), hence the second of slack.
func killBetween(kills []time.Time, first, next time.Time, lease time.Duration) int {
	const slack = time.Second
	for k, at := range kills {
		if first.Before(at.Add(slack)) && at.Sub(first) < lease && next.After(at) {
			return k
		}
	}
	return -1
}
