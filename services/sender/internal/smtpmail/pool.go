package smtpmail

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// Pool shares at most Size SMTP connections among any number of delivery
// workers, so the number of connections to the relay is set on its own
// (SENDER_SMTP_CONNECTIONS) rather than one per worker. A worker holds a
// connection for one message: Dial hands it an idle connection (or opens a
// new one while fewer than Size are open, or waits), and Close gives it
// back. While one worker does its Redis work between messages, another
// sends on the same connection, so a few connections stay busy, and many
// connections to a distant relay cost only idle goroutines.
//
// A worker that asks with DialFor tells the message it wants the
// connection for. When a worker is about to write its message and such a
// worker is waiting, the waiter's MAIL, RCPT and DATA go in the same write
// as the message and its final dot (RFC 2920 pipelining), and once the
// relay has accepted the message (250) the connection goes straight to
// the waiter, whose send then starts by reading its envelope's replies:
// one write and one read per message, on both sides. Whatever else
// happens to the message (refused, no reply, a broken connection), the
// waiter is not charged: it has not taken its delivery lease yet, and it
// simply asks for a connection again. A waiter that does not send after
// all (its lease refused, shutdown) closes the connection, since only
// that ends the DATA opened for it without delivering anything.
//
// Pool implements delivery.Mailer and delivery.EnvelopeDialer.
type Pool struct {
	m          delivery.Mailer
	size       int
	maxPerConn int

	mu      sync.Mutex
	idle    []*pooled // connections ready for a message, oldest first
	open    int       // connections open or being opened
	waiters []*waiter // workers waiting for a connection, in order
	closed  bool
}

// maxIdle is how long a connection may sit unused in the pool before it
// is closed instead of reused: relays drop idle sessions (often after
// 60-300 s), and since NOOP is off a dead connection would cost an attempt.
const maxIdle = 30 * time.Second

var (
	_ delivery.Mailer         = (*Pool)(nil)
	_ delivery.EnvelopeDialer = (*Pool)(nil)
	_ delivery.Replier        = (*lease)(nil)
)

// NewPool returns a pool of at most size connections opened by m, each
// replaced after maxPerConn messages.
func NewPool(m delivery.Mailer, size, maxPerConn int) (*Pool, error) {
	if size < 1 || maxPerConn < 1 {
		return nil, errors.New("smtpmail: pool size and messages per connection must be positive")
	}
	return &Pool{m: m, size: size, maxPerConn: maxPerConn}, nil
}

// pooled is one connection of the pool.
type pooled struct {
	c        delivery.Conn
	sent     int
	lastUsed time.Time
}

// waiter is a worker waiting for a connection.
type waiter struct {
	// env is the message the worker wants the connection for; nil when
	// unknown (Dial).
	env *delivery.Envelope
	// got receives the connection, or nil: a place may be free, ask again.
	got chan *pooled
	// claimed: a sender took the waiter out of the queue and wrote its
	// envelope; it hands over the connection, or nil.
	claimed bool
	// gone: the waiter gave up while claimed (its context ended).
	gone bool
}

// Dial implements delivery.Mailer: it returns a connection for one
// message. Only opening a new connection can fail.
func (p *Pool) Dial(ctx context.Context) (delivery.Conn, error) {
	return p.get(ctx, nil)
}

// DialFor implements delivery.EnvelopeDialer: Dial, for the message of
// env, whose envelope another worker's send may write ahead on the
// connection. The connection is for that message only.
func (p *Pool) DialFor(ctx context.Context, env delivery.Envelope) (delivery.Conn, error) {
	return p.get(ctx, &env)
}

func (p *Pool) get(ctx context.Context, env *delivery.Envelope) (delivery.Conn, error) {
	for {
		p.mu.Lock()
		if len(p.idle) > 0 {
			pc := p.idle[0]
			p.idle = p.idle[1:]
			p.mu.Unlock()
			if pc.sent < p.maxPerConn && time.Since(pc.lastUsed) <= maxIdle {
				return &lease{p: p, pc: pc}, nil
			}
			p.discard(pc)
			continue
		}
		if p.open < p.size {
			p.open++
			p.mu.Unlock()
			c, err := p.m.Dial(ctx)
			if err != nil {
				p.release()
				return nil, err
			}
			return &lease{p: p, pc: &pooled{c: c, lastUsed: time.Now()}}, nil
		}
		w := &waiter{env: env, got: make(chan *pooled, 1)}
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()
		select {
		case pc := <-w.got:
			if pc != nil {
				return &lease{p: p, pc: pc}, nil
			}
		case <-ctx.Done():
			p.leave(w)
			return nil, ctx.Err()
		}
	}
}

// leave takes a waiter whose context ended out of the queue, or marks it
// gone when a sender has claimed it; a connection handed over meanwhile
// goes back.
func (p *Pool) leave(w *waiter) {
	p.mu.Lock()
	select {
	case pc := <-w.got:
		p.mu.Unlock()
		if pc == nil {
			p.wakeOne()
		} else {
			p.giveBack(pc)
		}
		return
	default:
	}
	if w.claimed {
		w.gone = true
	} else if i := slices.Index(p.waiters, w); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
	}
	p.mu.Unlock()
}

// popWaiter takes the first waiter out of the queue (p.mu held), or nil.
func (p *Pool) popWaiter() *waiter {
	if len(p.waiters) == 0 {
		return nil
	}
	w := p.waiters[0]
	p.waiters = slices.Delete(p.waiters, 0, 1)
	return w
}

// wakeOne tells the first waiter to ask again: a place may be free.
func (p *Pool) wakeOne() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.popWaiter(); w != nil {
		w.got <- nil // never blocks: one value per wait
	}
}

// release frees the place of a connection closed or never opened.
func (p *Pool) release() {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
	p.wakeOne()
}

// discard closes a connection and frees its place.
func (p *Pool) discard(pc *pooled) {
	_ = pc.c.Close()
	p.release()
}

// Close closes the idle connections (QUIT). Connections still lent out are
// closed when they come back.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		p.discard(pc)
	}
}

// giveBack returns a healthy connection to the first waiter or the idle
// list, or closes it. A connection with an envelope written ahead that was
// not sent is closed (see Pool).
func (p *Pool) giveBack(pc *pooled) {
	if c, ok := pc.c.(*conn); ok {
		c.dropAhead()
	}
	p.mu.Lock()
	if p.closed || !pc.c.Reusable() || pc.sent >= p.maxPerConn {
		p.mu.Unlock()
		p.discard(pc)
		return
	}
	if w := p.popWaiter(); w != nil {
		w.got <- pc
	} else {
		p.idle = append(p.idle, pc)
	}
	p.mu.Unlock()
}

// claim takes the first waiter whose envelope can be written ahead on pc
// (as told by envelopeOf) out of the queue, for the message after pc's
// next one; nil when there is none, or when pc will not carry another
// message.
func (p *Pool) claim(pc *pooled, envelopeOf func(delivery.Envelope) (*envelope, bool)) (*waiter, *envelope) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || pc.sent+2 > p.maxPerConn {
		return nil, nil
	}
	for i, w := range p.waiters {
		if w.env == nil {
			continue
		}
		if e, ok := envelopeOf(*w.env); ok {
			p.waiters = slices.Delete(p.waiters, i, i+1)
			w.claimed = true
			return w, e
		}
	}
	return nil, nil
}

// handOver gives a claimed waiter pc, whose envelope is written ahead;
// false when the waiter is gone.
func (p *Pool) handOver(w *waiter, pc *pooled) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.gone {
		return false
	}
	w.got <- pc
	return true
}

// turnAway tells a claimed waiter that its envelope will not be answered
// on the connection it was written to: it asks for a connection again.
func (p *Pool) turnAway(w *waiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !w.gone {
		w.got <- nil
	}
}

// openCount is the number of connections open or being opened.
func (p *Pool) openCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}
