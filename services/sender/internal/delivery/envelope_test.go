package delivery_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// envMailer is a delivery.EnvelopeDialer whose connections are bound to
// the message they were dialled for (like smtpmail.Pool's): it records
// every send on a connection bound to another message, and every
// connection not closed.
type envMailer struct {
	fakeMailer
	mu       sync.Mutex
	dials    int
	closed   int
	crossed  []string
	plainUse int
}

func (m *envMailer) Dial(context.Context) (delivery.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.plainUse++
	return &fakeConn{m: &m.fakeMailer}, nil
}

func (m *envMailer) DialFor(_ context.Context, env delivery.Envelope) (delivery.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dials++
	return &boundConn{fakeConn: fakeConn{m: &m.fakeMailer}, env: env, m: m}, nil
}

func (m *envMailer) counts() (dials, closed, plain int, crossed []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dials, m.closed, m.plainUse, slices.Clone(m.crossed)
}

type boundConn struct {
	fakeConn
	env    delivery.Envelope
	m      *envMailer
	sent   bool
	closed bool
}

func (c *boundConn) Send(ctx context.Context, mail *delivery.Mail) error {
	if c.sent || c.closed || mail.MessageID != c.env.MessageID || mail.To != c.env.To {
		c.m.mu.Lock()
		c.m.crossed = append(c.m.crossed, fmt.Sprintf("%s on a connection for %s (sent %v, closed %v)", mail.To, c.env.To, c.sent, c.closed))
		c.m.mu.Unlock()
	}
	c.sent = true
	return c.fakeConn.Send(ctx, mail)
}

func (c *boundConn) Reusable() bool { return false }

func (c *boundConn) Close() error {
	if !c.closed {
		c.closed = true
		c.m.mu.Lock()
		c.m.closed++
		c.m.mu.Unlock()
	}
	return nil
}

// TestWorkerDialsForItsMessage: with a Mailer that takes the envelope, a
// worker asks for a connection with the envelope of the message it then
// sends on it, never another, and closes the connection after the entry
// also when it sends nothing (lease held, recipient cancelled).
func TestWorkerDialsForItsMessage(t *testing.T) {
	q, m := newMemQueue(), &envMailer{}
	held := q.add("held", "held@example.com", queue.LaneBulk)
	q.marks[held] = "sending:another-replica:1"
	gone := q.add("gone", "gone@example.com", queue.LaneBulk)
	q.cancelled["gone@example.com"] = time.Now().Add(time.Second)
	var ids []string
	for i := range 6 {
		ids = append(ids, q.add(fmt.Sprint("k", i), fmt.Sprintf("r%d@example.com", i), queue.LaneBulk))
	}
	run(t, q, m, func(c *delivery.DispatcherConfig) { c.Workers = 2 })
	for _, id := range ids {
		waitFor(t, "SENT", func() bool { return q.record(id).State == queue.StateSent })
	}
	waitFor(t, "CANCELLED", func() bool { return q.record(gone).State == queue.StateCancelled })
	waitFor(t, "every connection closed", func() bool {
		dials, closed, _, _ := m.counts()
		// held, gone and the six sent ones at least.
		return dials >= 8 && closed == dials
	})
	_, _, plain, crossed := m.counts()
	if plain != 0 {
		t.Errorf("%d connections dialled without the envelope", plain)
	}
	for _, c := range crossed {
		t.Errorf("sent %s", c)
	}
	if got := m.sentTo(); len(got) != len(ids) {
		t.Errorf("sent %v, want the %d free messages once each", got, len(ids))
	}
}
