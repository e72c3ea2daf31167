package smtpmail

import (
	"context"
	"fmt"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// lease is a pool connection lent out for one message.
type lease struct {
	p        *Pool
	pc       *pooled
	reply    string // the reply to the message's final dot
	returned bool
}

// Send implements delivery.Conn. On a connection of this package it may
// write a waiting worker's envelope behind the message (see Pool) and,
// once the relay accepted the message, hands the connection to that
// worker at once; otherwise the waiter asks for a connection again.
func (l *lease) Send(ctx context.Context, m *delivery.Mail) error {
	c, ok := l.pc.c.(*conn)
	if !ok {
		return l.sent(l.pc.c.Send(ctx, m))
	}
	if !c.expects(m) {
		// Prepared for another message (delivery's worker never does
		// this): that transaction cannot be reused, so take another
		// connection, asking without an envelope so that none is
		// written ahead on it.
		l.returned = true
		l.p.giveBack(l.pc)
		next, err := l.p.get(ctx, nil)
		if err != nil {
			return fmt.Errorf("smtpmail: replace a connection prepared for another message: %w", err)
		}
		l.pc, l.returned = next.(*lease).pc, false
		return l.Send(ctx, m)
	}
	var claimed *waiter
	err := l.sent(c.sendNext(ctx, m, func() *envelope {
		w, e := l.p.claim(l.pc, c.envelopeOf)
		claimed = w
		return e
	}))
	if claimed == nil {
		return err
	}
	// The connection is the waiter's if the relay accepted this message
	// and nothing broke; else it is closed and the waiter asks again.
	l.returned = true
	if err == nil && c.ahead != nil && c.Reusable() && l.p.handOver(claimed, l.pc) {
		return nil
	}
	l.p.giveBack(l.pc)
	l.p.turnAway(claimed)
	return err
}

// sent records a send on the connection and keeps its reply.
func (l *lease) sent(err error) error {
	l.pc.sent++
	l.pc.lastUsed = time.Now()
	if r, ok := l.pc.c.(delivery.Replier); ok && err == nil {
		l.reply = r.LastReply()
	}
	return err
}

// LastReply implements delivery.Replier: the reply to the leased message's
// final dot (the connection may already carry the next one).
func (l *lease) LastReply() string { return l.reply }

// Reusable implements delivery.Conn: false, so that the worker gives the
// connection back (Close) after every message.
func (l *lease) Reusable() bool { return false }

// Close implements delivery.Conn: the connection goes back to the pool,
// unless it was handed on already.
func (l *lease) Close() error {
	if !l.returned {
		l.returned = true
		l.p.giveBack(l.pc)
	}
	return nil
}
