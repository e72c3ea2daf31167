package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// worker is one delivery goroutine's state: its connection to the relay.
type worker struct {
	d        *Dispatcher
	conn     Conn
	sent     int       // messages on conn
	lastUsed time.Time // when conn last finished a send
	dialBo   backoff
	failing  bool // the last dial failed
}

func (d *Dispatcher) workLoop(ctx, hard context.Context) {
	w := &worker{d: d, dialBo: backoff{min: min(100*time.Millisecond, d.cfg.RetryAfter), max: d.cfg.RetryAfter}}
	defer w.dropConn()
	for {
		e, ok := d.next(ctx)
		if !ok {
			return
		}
		w.handle(ctx, hard, e)
		d.finished(e)
	}
}

// handle takes one entry through delivery. Whatever happens, the entry is
// acknowledged only once its record says SENT or DEAD; on any other path it
// stays pending and is claimed again after RetryAfter.
func (w *worker) handle(ctx, hard context.Context, e Entry) {
	d := w.d
	log := d.log.With("message_id", e.MessageID, "lane", e.Lane.String(), "partition", e.Partition)
	if e.MessageID == "" {
		log.ErrorContext(ctx, "sender: dropping a malformed queue entry", "stream_id", e.StreamID)
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return
	}
	msg, err := d.q.GetMessage(hard, e.MessageID)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		log.ErrorContext(ctx, "sender: dropping a queue entry without a message record", "stream_id", e.StreamID)
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return
	case err != nil:
		log.WarnContext(ctx, "sender: loading a message failed; it will be retried", "err", err)
		return
	case msg.State.Done():
		// A redelivery of a finished message (e.g. its ack was lost).
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return
	}
	tmpl, err := d.content(hard, msg.ContentID)
	if errors.Is(err, queue.ErrNotFound) {
		w.dead(ctx, hard, log, e, "content "+msg.ContentID+" is no longer stored")
		return
	}
	if err != nil {
		log.WarnContext(ctx, "sender: loading content failed; the message will be retried", "err", err)
		return
	}
	if !w.connect(ctx) || ctx.Err() != nil {
		return // shutting down: never start a send
	}
	attempts, err := d.q.StartAttempt(hard, e, d.now())
	if err != nil {
		log.WarnContext(ctx, "sender: counting an attempt failed; the message will be retried", "err", err)
		return
	}
	if attempts > d.cfg.MaxAttempts {
		// Earlier attempts never recorded an outcome (e.g. crashes mid-send).
		w.dead(ctx, hard, log, e, fmt.Sprintf("gave up after %d attempts without an outcome", attempts-1))
		return
	}
	mail := &Mail{
		MessageID:          msg.ID,
		To:                 msg.Recipient,
		Lane:               msg.Lane,
		Rendered:           tmpl.Render(msg.Variables),
		ListUnsubscribeURL: msg.ListUnsubscribeURL,
	}
	start := d.now()
	err = w.conn.Send(hard, mail)
	d.metrics.SendDuration(d.now().Sub(start))
	w.sent++
	w.lastUsed = d.now()
	if !w.conn.Reusable() {
		w.dropConn()
	}
	switch {
	case err == nil:
		if d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkSent(ctx, e, d.now()) }) {
			d.metrics.Sent(e.Lane)
			log.DebugContext(ctx, "sender: delivered", "attempts", attempts)
		} else {
			log.ErrorContext(ctx, "sender: delivered but could not record it before shutdown; the message may be sent again")
		}
	case errors.Is(err, ErrRejected):
		w.dead(ctx, hard, log, e, describe(err))
	case attempts >= d.cfg.MaxAttempts:
		w.dead(ctx, hard, log, e, fmt.Sprintf("gave up after %d attempts: %s", attempts, describe(err)))
	default:
		d.metrics.Retried(e.Lane)
		log.WarnContext(ctx, "sender: delivery failed temporarily; it will be retried", "attempts", attempts, "err", describe(err))
		rctx, cancel := alive(hard)
		defer cancel()
		if err := d.q.Retry(rctx, e, d.cfg.Consumer, describe(err), d.now()); err != nil {
			log.WarnContext(ctx, "sender: recording a temporary failure failed", "err", err)
		}
	}
}

func (w *worker) dead(ctx, hard context.Context, log *slog.Logger, e Entry, reason string) {
	d := w.d
	if d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkDead(ctx, e, reason, d.now()) }) {
		d.metrics.Dead(e.Lane)
		log.WarnContext(ctx, "sender: message dead-lettered", "reason", reason)
	}
}

// connect makes sure the worker has a fresh connection, dialling with
// backoff for as long as the relay is unreachable. Dial failures do not
// count as message attempts: an outage of the relay must not dead-letter the
// queue. It reports false when ctx is done first.
func (w *worker) connect(ctx context.Context) bool {
	d := w.d
	if w.conn != nil && (w.sent >= d.cfg.MaxPerConn || d.now().Sub(w.lastUsed) > maxIdle) {
		w.dropConn()
	}
	for w.conn == nil {
		conn, err := d.mailer.Dial(ctx)
		if err == nil {
			if w.failing {
				d.log.InfoContext(ctx, "sender: the relay is reachable again")
			}
			w.conn, w.sent, w.lastUsed, w.failing = conn, 0, d.now(), false
			w.dialBo.reset()
			break
		}
		if ctx.Err() != nil {
			return false
		}
		d.metrics.DialFailed()
		wait := w.dialBo.next()
		if !w.failing {
			d.log.WarnContext(ctx, "sender: cannot connect to the relay; retrying with backoff", "err", describe(err))
			w.failing = true
		} else {
			d.log.DebugContext(ctx, "sender: cannot connect to the relay", "err", describe(err), "retry_in", wait)
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
	return true
}

func (w *worker) dropConn() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// retryStore runs a store write until it succeeds or ctx is done (then
// once more with a short deadline). Outcome writes are retried because
// giving up means the message is sent again.
func (d *Dispatcher) retryStore(ctx context.Context, op func(context.Context) error) bool {
	bo := backoff{min: 20 * time.Millisecond, max: storeRetryMax}
	for {
		err := op(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			break
		}
		d.log.WarnContext(ctx, "sender: recording a delivery outcome failed; retrying", "err", err)
		if !sleep(ctx, bo.next()) {
			break
		}
	}
	last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	return op(last) == nil
}

// alive returns ctx, or when it is already done (a send was cut off at
// shutdown) a short detached context, so the outcome can still be written.
func alive(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
}

// content returns the compiled template of a content id, from the cache or
// the store.
func (d *Dispatcher) content(ctx context.Context, id string) (*mailtemplate.Compiled, error) {
	if c, ok := d.contents.get(id); ok {
		return c, nil
	}
	c, err := d.q.GetContent(ctx, id)
	if err != nil {
		return nil, err
	}
	tmpl := c.Compile()
	d.contents.put(id, tmpl)
	return tmpl, nil
}

// describe turns a delivery error into a bounded single line for last_error
// and logs.
func describe(err error) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, err.Error())
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen] + "…"
	}
	return s
}
