package smtpmail

import (
	"context"
	"errors"
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
// Pool implements delivery.Mailer.
type Pool struct {
	m          delivery.Mailer
	maxPerConn int

	idle   chan *pooled  // connections ready for a message
	open   chan struct{} // one token per open connection
	mu     sync.Mutex    // guards closed
	closed bool
}

// maxIdle is how long a connection may sit unused in the pool before it
// is closed instead of reused: relays drop idle sessions (often after
// 60-300 s), and since NOOP is off a dead connection would cost an attempt.
const maxIdle = 30 * time.Second

var (
	_ delivery.Mailer  = (*Pool)(nil)
	_ delivery.Replier = (*lease)(nil)
)

// NewPool returns a pool of at most size connections opened by m, each
// replaced after maxPerConn messages.
func NewPool(m delivery.Mailer, size, maxPerConn int) (*Pool, error) {
	if size < 1 || maxPerConn < 1 {
		return nil, errors.New("smtpmail: pool size and messages per connection must be positive")
	}
	return &Pool{m: m, maxPerConn: maxPerConn, idle: make(chan *pooled, size), open: make(chan struct{}, size)}, nil
}

// pooled is one connection of the pool.
type pooled struct {
	c        delivery.Conn
	sent     int
	lastUsed time.Time
}

// Dial implements delivery.Mailer: it returns a connection for one
// message. Only opening a new connection can fail.
func (p *Pool) Dial(ctx context.Context) (delivery.Conn, error) {
	for {
		var pc *pooled
		select {
		case pc = <-p.idle:
		default:
			select {
			case pc = <-p.idle:
			case p.open <- struct{}{}:
				c, err := p.m.Dial(ctx)
				if err != nil {
					<-p.open
					return nil, err
				}
				return &lease{p: p, pc: &pooled{c: c, lastUsed: time.Now()}}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if pc.sent < p.maxPerConn && time.Since(pc.lastUsed) <= maxIdle {
			return &lease{p: p, pc: pc}, nil
		}
		p.discard(pc)
	}
}

// discard closes a connection and frees its place.
func (p *Pool) discard(pc *pooled) {
	_ = pc.c.Close()
	<-p.open
}

// Close closes the idle connections (QUIT). Connections still lent out are
// closed when they come back.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case pc := <-p.idle:
			p.discard(pc)
		default:
			return
		}
	}
}

// giveBack returns a healthy connection to the pool, or closes it.
func (p *Pool) giveBack(pc *pooled) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed || !pc.c.Reusable() || pc.sent >= p.maxPerConn {
		p.discard(pc)
		return
	}
	p.idle <- pc // never blocks: idle holds as many as can be open
}

// lease is a pool connection lent out for one message.
type lease struct {
	p        *Pool
	pc       *pooled
	returned bool
}

// Send implements delivery.Conn.
func (l *lease) Send(ctx context.Context, m *delivery.Mail) error {
	err := l.pc.c.Send(ctx, m)
	l.pc.sent++
	l.pc.lastUsed = time.Now()
	return err
}

// LastReply implements delivery.Replier.
func (l *lease) LastReply() string {
	if r, ok := l.pc.c.(delivery.Replier); ok {
		return r.LastReply()
	}
	return ""
}

// Reusable implements delivery.Conn: false, so that the worker gives the
// connection back (Close) after every message.
func (l *lease) Reusable() bool { return false }

// Close implements delivery.Conn: the connection goes back to the pool.
func (l *lease) Close() error {
	if !l.returned {
		l.returned = true
		l.p.giveBack(l.pc)
	}
	return nil
}
