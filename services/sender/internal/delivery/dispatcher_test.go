package delivery_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// run starts a dispatcher on q and m until the test ends.
func run(t *testing.T, q *memQueue, m delivery.Mailer, change func(*delivery.DispatcherConfig)) {
	t.Helper()
	cfg := delivery.DispatcherConfig{
		Partitions: 1, Workers: 1, Consumer: "test", MaxAttempts: 4, RetryAfter: 20 * time.Millisecond,
		RetryMaxDelay: 40 * time.Millisecond, Lease: 200 * time.Millisecond, RetryUnknown: true,
		MaxPerConn: 100, Grace: time.Second, Logger: logging.Discard(),
	}
	if change != nil {
		change(&cfg)
	}
	d, err := delivery.NewDispatcher(cfg, q, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDeliversTransactionalFirstAndOnce(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	var ids []string
	for i := range 5 {
		ids = append(ids, q.add(fmt.Sprint("b", i), fmt.Sprintf("b%d@example.com", i), queue.LaneBulk))
	}
	ids = append(ids, q.add("t", "t@example.com", queue.LaneTransactional))
	run(t, q, m, nil)
	waitFor(t, "all sent", func() bool { return len(m.sentTo()) == 6 })
	if got := m.sentTo(); got[0] != "t@example.com" {
		t.Errorf("sent order %v, want the transactional message first", got)
	}
	for _, id := range ids {
		waitFor(t, "SENT records", func() bool { return q.record(id).State == queue.StateSent })
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(try int) error
		unknown   bool // RetryUnknown
		wantState queue.State
		wantSends int // accepted sends
		wantTries int
		wantAtt   int
		report    bool
	}{
		{"5xx is dead and reported", func(int) error { return fmt.Errorf("550: %w", delivery.ErrRejected) }, true, queue.StateDead, 0, 1, 1, true},
		{"4xx is retried with backoff", func(try int) error {
			if try < 3 {
				return errTemp
			}
			return nil
		}, true, queue.StateSent, 1, 3, 3, false},
		{"4xx until the attempts run out", func(int) error { return errTemp }, true, queue.StateDead, 0, 4, 4, false},
		{"throttling spends no attempt", func(try int) error {
			if try < 6 {
				return fmt.Errorf("421: %w", delivery.ErrThrottled)
			}
			return nil
		}, true, queue.StateSent, 1, 6, 1, false},
		{"unknown outcome is retried once", func(try int) error {
			if try == 1 {
				return fmt.Errorf("no reply to the dot: %w", delivery.ErrOutcomeUnknown)
			}
			return nil
		}, true, queue.StateSent, 1, 2, 2, false},
		{"unknown outcome with retries off is dead", func(int) error {
			return fmt.Errorf("no reply to the dot: %w", delivery.ErrOutcomeUnknown)
		}, false, queue.StateDead, 0, 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newMemQueue()
			m := &fakeMailer{answer: func(_ string, try int) error { return tt.answer(try) }}
			id := q.add("k", "r@example.com", queue.LaneBulk)
			run(t, q, m, func(c *delivery.DispatcherConfig) { c.RetryUnknown = tt.unknown })
			waitFor(t, tt.wantState.String(), func() bool { return q.record(id).State == tt.wantState })
			rec := q.record(id)
			m.mu.Lock()
			tries := m.tries["r@example.com"]
			m.mu.Unlock()
			if len(m.sentTo()) != tt.wantSends || tries != tt.wantTries || rec.Attempts != tt.wantAtt {
				t.Errorf("accepted %d, tries %d, attempts %d; want %d, %d, %d", len(m.sentTo()), tries, rec.Attempts, tt.wantSends, tt.wantTries, tt.wantAtt)
			}
			q.mu.Lock()
			reported := slices.Contains(q.reports, "r@example.com")
			mark := q.marks[id]
			q.mu.Unlock()
			if reported != tt.report {
				t.Errorf("reported to the subscriber service: %v, want %v", reported, tt.report)
			}
			if rec.State == queue.StateDead && mark != "" {
				t.Errorf("a dead message kept its lease mark %q", mark)
			}
		})
	}
}

func TestLeaseHeldOrSentIsNotSent(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	held := q.add("held", "held@example.com", queue.LaneBulk)
	sent := q.add("sent", "sent@example.com", queue.LaneBulk)
	other := q.add("other", "other@example.com", queue.LaneBulk)
	q.marks[held] = "sending:another-replica:1"
	q.marks[sent] = "sent"
	run(t, q, m, nil)
	waitFor(t, "the free message sent", func() bool { return q.record(other).State == queue.StateSent })
	waitFor(t, "the sent-marked entry acknowledged", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.entries[1].acked
	})
	if got := m.sentTo(); !slices.Equal(got, []string{"other@example.com"}) {
		t.Errorf("sent %v, want only other@example.com", got)
	}
	q.mu.Lock()
	heldAcked := q.entries[0].acked
	q.mu.Unlock()
	if heldAcked {
		t.Error("the entry whose lease another replica holds was acknowledged")
	}
}

func TestLeaseLostBeforeTheSendIsNotSent(t *testing.T) {
	q := newMemQueue()
	id := q.add("k", "r@example.com", queue.LaneBulk)
	m := &fakeMailer{}
	// The worker stalls for a whole lease after taking it (simulated: the
	// clock jumps while it loads the content) and another replica takes
	// the message over meanwhile.
	var clock fakeClock
	stolen := false
	q2 := &stealingQueue{memQueue: q, steal: func() {
		if !stolen {
			stolen = true
			q.marks[id] = "sending:another-replica:9"
			clock.skip(time.Hour)
		}
	}}
	lost := &countingMetrics{}
	run2(t, q2, m, lost, clock.now)
	// The moment the send would happen is when the worker has dealt with
	// the renewal: it reports the lost lease.
	waitFor(t, "the lost lease", func() bool { return lost.leaseLost.Load() == 1 })
	if n := len(m.sentTo()); n != 0 {
		t.Errorf("the worker sent after losing its lease (%d sends)", n)
	}
	if st := q.record(id).State; st != queue.StateQueued {
		t.Errorf("state %v, want QUEUED (the other replica owns it now)", st)
	}
}

// A lease taken moments before the send is not renewed: the send goes out
// with one Redis round trip less, bounded by the lease it took.
func TestFreshLeaseIsNotRenewed(t *testing.T) {
	q := newMemQueue()
	id := q.add("k", "r@example.com", queue.LaneBulk)
	m := &fakeMailer{}
	renewals := &renewCountingQueue{memQueue: q}
	d, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Partitions: 1, Workers: 1, Consumer: "test", MaxAttempts: 4, RetryAfter: time.Hour,
		Lease: time.Minute, MaxPerConn: 100, Grace: time.Second, Logger: logging.Discard(),
	}, renewals, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "SENT", func() bool { return q.record(id).State == queue.StateSent })
	if n := renewals.n.Load(); n != 0 {
		t.Errorf("a lease taken moments before the send was renewed %d times", n)
	}
}

// renewCountingQueue counts lease renewals.
type renewCountingQueue struct {
	*memQueue
	n atomic.Int64
}

func (r *renewCountingQueue) RenewLease(ctx context.Context, e delivery.Entry, token string, d time.Duration) (bool, error) {
	r.n.Add(1)
	return r.memQueue.RenewLease(ctx, e, token, d)
}

// fakeClock is the real clock plus the time skipped.
type fakeClock struct {
	mu      sync.Mutex
	skipped time.Duration
}

func (c *fakeClock) skip(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipped += d
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skipped)
}

// countingMetrics counts lost leases; it records nothing else.
type countingMetrics struct {
	leaseLost atomic.Int64
}

func (*countingMetrics) Sent(queue.Lane)            {}
func (*countingMetrics) Dead(queue.Lane)            {}
func (*countingMetrics) Retried(queue.Lane)         {}
func (*countingMetrics) SendDuration(time.Duration) {}
func (*countingMetrics) DialFailed()                {}
func (*countingMetrics) Cancelled(queue.Lane)       {}
func (*countingMetrics) OutcomeUnknown(queue.Lane)  {}
func (*countingMetrics) Throttled()                 {}
func (*countingMetrics) MissingRecord()             {}
func (c *countingMetrics) LeaseLost()               { c.leaseLost.Add(1) }

// stealingQueue calls steal (holding the queue's lock) when the worker
// loads the message's content, after it took the lease.
type stealingQueue struct {
	*memQueue
	steal func()
}

func (s *stealingQueue) GetContent(ctx context.Context, id string) (queue.Content, error) {
	s.memQueue.mu.Lock()
	s.steal()
	s.memQueue.mu.Unlock()
	return s.memQueue.GetContent(ctx, id)
}

func run2(t *testing.T, q delivery.Queue, m *fakeMailer, metrics delivery.Metrics, now func() time.Time) {
	t.Helper()
	d, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Partitions: 1, Workers: 1, Consumer: "test", MaxAttempts: 4, RetryAfter: time.Hour,
		Lease: 200 * time.Millisecond, MaxPerConn: 100, Grace: time.Second, Logger: logging.Discard(), Metrics: metrics, Now: now,
	}, q, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCancelledRecipientIsNotSent(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	gone := q.add("gone", "gone@example.com", queue.LaneBulk)
	q.cancelled["gone@example.com"] = time.Now().Add(time.Second) // after it was queued
	kept := q.add("kept", "kept@example.com", queue.LaneBulk)
	run(t, q, m, nil)
	waitFor(t, "CANCELLED", func() bool { return q.record(gone).State == queue.StateCancelled })
	waitFor(t, "SENT", func() bool { return q.record(kept).State == queue.StateSent })
	if got := m.sentTo(); !slices.Equal(got, []string{"kept@example.com"}) {
		t.Errorf("sent %v, want only kept@example.com", got)
	}
}

// TestUnreadableCancelsSpendNoAttempt: a lease taken while the recipient's
// cancels cannot be read (their Cluster node is down) is given back with
// its attempt, however often it happens, and the message is sent once the
// cancels can be read, with one attempt counted.
func TestUnreadableCancelsSpendNoAttempt(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	id := q.add("k", "r@example.com", queue.LaneBulk)
	q.cancelReadFails = 10 // more than MaxAttempts (4)
	run(t, q, m, nil)
	waitFor(t, "SENT or DEAD", func() bool { return q.record(id).State.Done() })
	if rec := q.record(id); rec.State != queue.StateSent || rec.Attempts != 1 {
		t.Errorf("state %v attempts %d (%s), want SENT after 1 attempt", rec.State, rec.Attempts, rec.LastError)
	}
	if got := m.sentTo(); !slices.Equal(got, []string{"r@example.com"}) {
		t.Errorf("sent %v, want one message to r@example.com", got)
	}
}

func TestPauseStopsSendingUntilResumed(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	q.setPaused(true)
	id := q.add("k", "r@example.com", queue.LaneBulk)
	// The moment a send would happen: the entry is read and in a worker's
	// hands (delivered), and the pause switch was read since.
	reads := 0
	q2 := &countingPause{memQueue: q, reads: &reads}
	run2(t, q2, m, nil, nil)
	waitFor(t, "the entry read and the pause read twice", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.entries[0].delivered && reads >= 2
	})
	if n := len(m.sentTo()); n != 0 {
		t.Fatalf("%d sends while paused", n)
	}
	q.setPaused(false)
	waitFor(t, "SENT after the resume", func() bool { return q.record(id).State == queue.StateSent })
}

type countingPause struct {
	*memQueue
	reads *int
}

func (c *countingPause) GetPause(ctx context.Context) (queue.Pause, error) {
	p, err := c.memQueue.GetPause(ctx)
	c.memQueue.mu.Lock()
	*c.reads++
	c.memQueue.mu.Unlock()
	return p, err
}

func TestMissingRecordIsDeadLettered(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	q.mu.Lock()
	q.push(queue.MessageID("evicted"), queue.LaneBulk) // an entry without a record
	q.mu.Unlock()
	run(t, q, m, nil)
	waitFor(t, "dead letter", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.dlq) == 1 && q.entries[0].acked
	})
	if n := len(m.sentTo()); n != 0 {
		t.Errorf("%d sends for a missing record", n)
	}
}

// countingLimiter refuses every other reservation with a short wait.
type countingLimiter struct {
	calls atomic.Int64
}

func (l *countingLimiter) Reserve(context.Context) (time.Duration, error) {
	if l.calls.Add(1)%2 == 1 {
		return time.Millisecond, nil
	}
	return 0, nil
}

func TestSendsWaitForTheRateLimiter(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	for i := range 3 {
		q.add(fmt.Sprint("k", i), fmt.Sprintf("r%d@example.com", i), queue.LaneBulk)
	}
	lim := &countingLimiter{}
	run(t, q, m, func(c *delivery.DispatcherConfig) { c.RateLimiter = lim })
	waitFor(t, "all sent", func() bool { return len(m.sentTo()) == 3 })
	if n := lim.calls.Load(); n != 6 {
		t.Errorf("%d reservations for 3 sends, want 6 (each refused once, then allowed)", n)
	}
}

// TestNextLeaseRidesWithTheSentRecord: a worker that finds its next entry
// waiting takes its lease together with recording the message it sent (one
// round trip). Every message is still sent once with one attempt, and a
// recipient cancelled after queueing is still not sent when its lease came
// that way.
func TestNextLeaseRidesWithTheSentRecord(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	var ids []string
	for i := range 20 {
		ids = append(ids, q.add(fmt.Sprint("n", i), fmt.Sprintf("n%d@example.com", i), queue.LaneBulk))
	}
	q.cancelled["n7@example.com"] = time.Now().Add(time.Second) // after it was queued
	run(t, q, m, nil)
	for i, id := range ids {
		want := queue.StateSent
		if i == 7 {
			want = queue.StateCancelled
		}
		waitFor(t, fmt.Sprintf("message %d %v", i, want), func() bool { return q.record(id).State == want })
	}
	got := m.sentTo()
	if len(got) != 19 || slices.Contains(got, "n7@example.com") {
		t.Errorf("sent %v; want the 19 not cancelled, once each", got)
	}
	for i, id := range ids {
		want := 1
		if i == 7 {
			want = 0 // the cancelled one's attempt is taken back
		}
		if r := q.record(id); r.Attempts != want {
			t.Errorf("message %d: %d attempts, want %d", i, r.Attempts, want)
		}
	}
	q.mu.Lock()
	combined := q.combined
	q.mu.Unlock()
	// One worker, all entries read at once: every lease but the first
	// rides with the record before it.
	if combined < 10 {
		t.Errorf("%d sent records carried the next lease, want most (≥ 10 of 19)", combined)
	}
}
