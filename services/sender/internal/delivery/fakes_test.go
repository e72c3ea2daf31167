package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// memQueue is an in-memory delivery.Queue: one partition's streams as
// slices, a pending list with owners, lease marks and records, so the
// dispatcher's decisions can be tested without Redis.
type memQueue struct {
	mu        sync.Mutex
	now       func() time.Time
	seq       int
	entries   []*memEntry
	records   map[string]*queue.Message
	contents  map[string]queue.Content
	marks     map[string]string // message id -> "sent" or a token
	leases    map[string]int
	delayed   map[string]time.Time
	cancelled map[string]time.Time
	pause     queue.Pause
	dlq       []string
	reports   []string
	// cancelReadFails is how many more acquired leases come back with an
	// error reading the recipient's cancels (a Cluster node down).
	cancelReadFails int
	// combined counts MarkSentAndLease calls.
	combined int
}

type memEntry struct {
	e         delivery.Entry
	delivered bool
	acked     bool
	owner     string
	since     time.Time
}

func newMemQueue() *memQueue {
	return &memQueue{
		now: time.Now, records: map[string]*queue.Message{}, contents: map[string]queue.Content{},
		marks: map[string]string{}, leases: map[string]int{}, delayed: map[string]time.Time{}, cancelled: map[string]time.Time{},
	}
}

// add queues a message to rcpt with a one-line text content.
func (q *memQueue) add(key, rcpt string, lane queue.Lane) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := queue.Content{Subject: "Hello {{name}}", Text: "text"}
	q.contents[c.ID()] = c
	id := queue.MessageID(key)
	q.records[id] = &queue.Message{ID: id, IdempotencyKey: key, Recipient: rcpt, Lane: lane, ContentID: c.ID(),
		Variables: map[string]string{"name": rcpt}, State: queue.StateQueued, Created: q.now()}
	q.push(id, lane)
	return id
}

func (q *memQueue) push(id string, lane queue.Lane) {
	q.seq++
	q.entries = append(q.entries, &memEntry{e: delivery.Entry{Lane: lane, StreamID: fmt.Sprintf("%d-0", q.seq), MessageID: id}})
}

func (q *memQueue) record(id string) queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return *q.records[id]
}

func (q *memQueue) Read(ctx context.Context, _ int, consumer string, count int, block time.Duration) ([]delivery.Entry, error) {
	q.mu.Lock()
	var out []delivery.Entry
	for _, lane := range queue.Lanes() {
		n := 0
		for _, me := range q.entries {
			if me.e.Lane == lane && !me.delivered && n < count {
				me.delivered, me.owner, me.since = true, consumer, q.now()
				out = append(out, me.e)
				n++
			}
		}
	}
	q.mu.Unlock()
	if len(out) == 0 {
		select {
		case <-time.After(min(block, 5*time.Millisecond)):
		case <-ctx.Done():
		}
	}
	return out, nil
}

func (q *memQueue) Claim(_ context.Context, _ int, lane queue.Lane, consumer string, minIdle time.Duration, _ string, count int) ([]delivery.Entry, string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []delivery.Entry
	for _, me := range q.entries {
		if me.e.Lane == lane && me.delivered && !me.acked && q.now().Sub(me.since) >= minIdle && len(out) < count {
			me.owner, me.since = consumer, q.now()
			out = append(out, me.e)
		}
	}
	return out, "0-0", nil
}

func (q *memQueue) Extend(_ context.Context, consumer string, entries []delivery.Entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range entries {
		if me := q.find(e); me != nil && me.owner == consumer {
			me.since = q.now()
		}
	}
	return nil
}

func (q *memQueue) find(e delivery.Entry) *memEntry {
	for _, me := range q.entries {
		if me.e.StreamID == e.StreamID && me.e.Lane == e.Lane {
			return me
		}
	}
	return nil
}

func (q *memQueue) GetMessage(_ context.Context, id string) (queue.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.records[id]
	if !ok {
		return queue.Message{}, queue.ErrNotFound
	}
	return *m, nil
}

func (q *memQueue) GetContent(_ context.Context, id string) (queue.Content, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	c, ok := q.contents[id]
	if !ok {
		return queue.Content{}, queue.ErrNotFound
	}
	return c, nil
}

func (q *memQueue) Lease(_ context.Context, e delivery.Entry, r delivery.LeaseRequest) (delivery.Lease, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.marks[e.MessageID]
	switch {
	case m == "sent":
		return delivery.Lease{Result: delivery.LeaseSent}, nil
	case m != "" && !strings.HasPrefix(m, "sending:"+r.Consumer+":"):
		return delivery.Lease{Result: delivery.LeaseHeld}, nil
	}
	rec, ok := q.records[e.MessageID]
	if !ok {
		return delivery.Lease{}, queue.ErrNotFound
	}
	q.leases[e.MessageID]++
	token := fmt.Sprintf("sending:%s:%d", r.Consumer, q.leases[e.MessageID])
	q.marks[e.MessageID] = token
	rec.Attempts++
	if q.cancelReadFails > 0 {
		q.cancelReadFails--
		return delivery.Lease{Result: delivery.LeaseAcquired, Token: token, Attempts: rec.Attempts}, errors.New("read cancels: connection refused")
	}
	return delivery.Lease{Result: delivery.LeaseAcquired, Token: token, Attempts: rec.Attempts, CancelledSince: q.cancelled[r.Recipient]}, nil
}

func (q *memQueue) RenewLease(_ context.Context, e delivery.Entry, token string, _ time.Duration) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.marks[e.MessageID] == token, nil
}

// finish records a final state and acknowledges the entry.
func (q *memQueue) finish(e delivery.Entry, token string, st queue.State, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.records[e.MessageID]
	if !r.State.Done() {
		r.State, r.LastError = st, reason
	}
	if st == queue.StateSent {
		q.marks[e.MessageID] = "sent"
	} else if token != "" && q.marks[e.MessageID] == token {
		delete(q.marks, e.MessageID)
	}
	if me := q.find(e); me != nil {
		me.acked = true
	}
}

func (q *memQueue) MarkSent(_ context.Context, e delivery.Entry, _ string, _ time.Time) error {
	q.finish(e, "", queue.StateSent, "")
	return nil
}

func (q *memQueue) MarkSentAndLease(ctx context.Context, e delivery.Entry, reply string, at time.Time, next delivery.Entry, r delivery.LeaseRequest) delivery.SentAndLease {
	q.mu.Lock()
	q.combined++
	q.mu.Unlock()
	out := delivery.SentAndLease{SentErr: q.MarkSent(ctx, e, reply, at)}
	out.Lease, out.LeaseErr = q.Lease(ctx, next, r)
	return out
}

func (q *memQueue) MarkDead(_ context.Context, e delivery.Entry, token, reason string, report bool, _ time.Time) error {
	q.finish(e, token, queue.StateDead, reason)
	if report {
		q.mu.Lock()
		q.reports = append(q.reports, q.records[e.MessageID].Recipient)
		q.mu.Unlock()
	}
	return nil
}

func (q *memQueue) MarkCancelled(_ context.Context, e delivery.Entry, token string, _ time.Time) error {
	q.mu.Lock()
	if rec := q.records[e.MessageID]; !rec.State.Done() && token != "" {
		rec.Attempts-- // the lease counted an attempt that was not made
	}
	q.mu.Unlock()
	q.finish(e, token, queue.StateCancelled, "cancelled")
	return nil
}

func (q *memQueue) Retry(_ context.Context, e delivery.Entry, token string, r delivery.Retry, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	rec := q.records[e.MessageID]
	if !rec.State.Done() {
		rec.State, rec.LastError, rec.NextAttempt = r.State, r.Reason, r.Due
		if r.Refund {
			rec.Attempts--
		}
		if r.State == queue.StateUnknown {
			rec.UnknownOutcomes++
		}
		q.delayed[e.MessageID] = r.Due
	}
	if q.marks[e.MessageID] == token {
		delete(q.marks, e.MessageID)
	}
	if me := q.find(e); me != nil {
		me.acked = true
	}
	return nil
}

func (q *memQueue) DeadLetterMissing(_ context.Context, e delivery.Entry, reason string, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dlq = append(q.dlq, e.MessageID+": "+reason)
	if me := q.find(e); me != nil {
		me.acked = true
	}
	return nil
}

func (q *memQueue) Ack(_ context.Context, e delivery.Entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if me := q.find(e); me != nil {
		me.acked = true
	}
	return nil
}

func (q *memQueue) GetPause(context.Context) (queue.Pause, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pause, nil
}

func (q *memQueue) setPaused(v bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pause = queue.Pause{Paused: v}
}

func (q *memQueue) PromoteDue(_ context.Context, _ int, now time.Time, _ int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for id, due := range q.delayed {
		if !due.After(now) {
			delete(q.delayed, id)
			q.push(id, q.records[id].Lane)
			n++
		}
	}
	return n, nil
}

func (q *memQueue) Maintain(context.Context, int, string, time.Duration) error { return nil }

// fakeMailer hands out connections whose Send answers from a script per
// recipient (nil: accepted) and records the accepted mail.
type fakeMailer struct {
	mu     sync.Mutex
	answer func(rcpt string, try int) error
	tries  map[string]int
	sent   []string
	// beforeSend, if set, runs at the start of each Send.
	beforeSend func(rcpt string)
}

func (m *fakeMailer) Dial(context.Context) (delivery.Conn, error) { return &fakeConn{m: m}, nil }

func (m *fakeMailer) sentTo() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.sent...)
}

type fakeConn struct{ m *fakeMailer }

func (c *fakeConn) Send(_ context.Context, mail *delivery.Mail) error {
	if c.m.beforeSend != nil {
		c.m.beforeSend(mail.To)
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.tries == nil {
		c.m.tries = map[string]int{}
	}
	c.m.tries[mail.To]++
	var err error
	if c.m.answer != nil {
		err = c.m.answer(mail.To, c.m.tries[mail.To])
	}
	if err == nil {
		c.m.sent = append(c.m.sent, mail.To)
	}
	return err
}

func (c *fakeConn) Reusable() bool { return true }
func (c *fakeConn) Close() error   { return nil }

var errTemp = errors.New("450 mailbox busy")
