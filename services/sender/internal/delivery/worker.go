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
		// A connection lent for one message (smtpmail.Pool) goes back even
		// when nothing was sent on it (a held lease, a cancel, a dead
		// letter): kept while this worker waits for its next entry, it
		// could leave the workers holding the last entries waiting for it
		// forever.
		if w.conn != nil && !w.conn.Reusable() {
			w.dropConn()
		}
		d.finished(e)
	}
}

// handle takes one entry through delivery (DESIGN §4). It acknowledges the
// entry only together with a final record (SENT, DEAD, CANCELLED) or a
// scheduled retry; on any other path the entry stays pending and is claimed
// again after RetryAfter. Between Lease and that final step this consumer
// holds the message's delivery lease; the send itself is bounded by the
// lease, renewed just before it unless it was taken moments before.
func (w *worker) handle(ctx, hard context.Context, e Entry) {
	d := w.d
	log := d.log.With("message_id", e.MessageID, "lane", e.Lane.String(), "partition", e.Partition)
	if e.MessageID == "" {
		w.missing(ctx, hard, log, e, "the queue entry has no valid message id")
		return
	}
	msg, err := d.q.GetMessage(hard, e.MessageID)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		w.missing(ctx, hard, log, e, "the message record is missing")
		return
	case err != nil:
		log.WarnContext(ctx, "sender: loading a message failed; it will be retried", "err", err)
		return
	case msg.State.Done():
		// A redelivery of a finished message (e.g. its ack was lost).
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return
	}
	if !d.waitUnpaused(ctx) {
		return // shutting down while paused: the entry stays pending
	}
	// Connect before taking the lease: a relay outage must not hold leases.
	if !w.connect(ctx) || ctx.Err() != nil {
		return // shutting down: never start a send
	}
	// Taken before the request, so leaseEnd is never later than the end
	// Redis gives the lease.
	leased := d.now()
	leaseEnd := leased.Add(d.cfg.Lease)
	lease, err := d.q.Lease(hard, e, LeaseRequest{Consumer: d.cfg.Consumer, Duration: d.cfg.Lease, At: leased, Recipient: msg.Recipient})
	switch {
	case err != nil && lease.Result == LeaseAcquired:
		// Taken, but the cancels are unknown: a Redis outage (another
		// Cluster node down) must cost the message no attempt.
		w.giveBack(ctx, hard, log, e, lease.Token, lease.Attempts, err)
		return
	case err != nil:
		log.WarnContext(ctx, "sender: taking the delivery lease failed; the message will be retried", "err", err)
		return
	case lease.Result == LeaseSent:
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return
	case lease.Result == LeaseHeld:
		// Another worker is sending it now: it acknowledges the entry when
		// done, or its lease ends and the entry is claimed again.
		log.DebugContext(ctx, "sender: another worker holds the delivery lease")
		return
	}
	// This consumer holds the lease, and the attempt is counted. Paths
	// that return without a final step leave the lease to expire.
	// The recipient's cancels were read with the lease.
	token, attempts := lease.Token, lease.Attempts
	if since := lease.CancelledSince; !since.IsZero() && !msg.Created.After(since) {
		if d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkCancelled(ctx, e, token, d.now()) }) {
			d.metrics.Cancelled(e.Lane)
			log.InfoContext(ctx, "sender: not sent: the recipient was cancelled after it was queued")
		}
		return
	}
	tmpl, err := d.content(hard, msg.ContentID)
	if errors.Is(err, queue.ErrNotFound) {
		w.dead(ctx, hard, log, e, token, "content "+msg.ContentID+" is no longer stored", false)
		return
	}
	if err != nil {
		log.WarnContext(ctx, "sender: loading content failed; the message will be retried", "err", err)
		return
	}
	if attempts > d.cfg.MaxAttempts {
		// Earlier attempts never recorded an outcome (e.g. crashes mid-send).
		w.dead(ctx, hard, log, e, token, fmt.Sprintf("gave up after %d attempts without an outcome", attempts-1), false)
		return
	}
	relay := relayOf(w.conn)
	if !d.pace(ctx, relay) {
		return
	}
	// Re-check the lease right before the send unless it was taken moments
	// ago: a worker that stalled (GC pause, SIGSTOP, a slow Redis) must not
	// send what another one took over. Either way the send is bounded by
	// the lease's end (the socket deadline below), so skipping the renewal
	// of a fresh lease only saves a round trip.
	if d.now().Sub(leased) >= freshLease(d.cfg.Lease) {
		renewed := d.now()
		held, err := d.q.RenewLease(hard, e, token, d.cfg.Lease)
		switch {
		case err != nil:
			log.WarnContext(ctx, "sender: renewing the delivery lease failed; the message will be retried", "err", err)
			return
		case !held:
			d.metrics.LeaseLost()
			log.WarnContext(ctx, "sender: the delivery lease was lost before the send; another worker owns the message")
			return
		}
		leaseEnd = renewed.Add(d.cfg.Lease)
	}
	mail := &Mail{
		MessageID:          msg.ID,
		To:                 msg.Recipient,
		Lane:               msg.Lane,
		Content:            tmpl,
		Variables:          msg.Variables,
		ListUnsubscribeURL: msg.ListUnsubscribeURL,
		TraceParent:        msg.TraceParent,
	}
	sendCtx, cancel := context.WithDeadline(hard, leaseEnd.Add(-leaseMargin(d.cfg.Lease)))
	start := d.now()
	err = w.conn.Send(sendCtx, mail)
	cancel()
	d.metrics.SendDuration(d.now().Sub(start))
	var reply string
	if r, ok := w.conn.(Replier); ok && err == nil {
		reply = r.LastReply()
	}
	w.sent++
	w.lastUsed = d.now()
	if !w.conn.Reusable() {
		w.dropConn()
	}
	w.outcome(ctx, hard, log, e, token, attempts, relay, reply, err)
}

// outcome records what a send to relay did.
func (w *worker) outcome(ctx, hard context.Context, log *slog.Logger, e Entry, token string, attempts int, relay, reply string, err error) {
	d := w.d
	switch {
	case err == nil:
		d.sendSucceeded(relay)
		if d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkSent(ctx, e, reply, d.now()) }) {
			d.metrics.Sent(e.Lane)
			log.DebugContext(ctx, "sender: delivered", "attempts", attempts)
		} else {
			log.ErrorContext(ctx, "sender: delivered but could not record it; the message may be sent again")
		}
	case errors.Is(err, ErrRejected):
		w.dead(ctx, hard, log, e, token, describe(err), true)
	case errors.Is(err, ErrOutcomeUnknown):
		d.metrics.OutcomeUnknown(e.Lane)
		switch {
		case !d.cfg.RetryUnknown:
			w.dead(ctx, hard, log, e, token, "outcome unknown, not retried (SENDER_UNKNOWN_OUTCOME=never): "+describe(err), false)
		case attempts >= d.cfg.MaxAttempts:
			w.dead(ctx, hard, log, e, token, fmt.Sprintf("gave up after %d attempts: %s", attempts, describe(err)), false)
		default:
			// The relay may have it: retry once, after the lease, so this
			// event costs at most one extra copy.
			w.retry(ctx, hard, log, e, token, attempts, Retry{State: queue.StateUnknown, Reason: describe(err), Due: d.now().Add(d.cfg.Lease)}, err)
		}
	case errors.Is(err, ErrThrottled):
		d.metrics.Throttled()
		delay := d.slowDown(hard, relay)
		w.retry(ctx, hard, log, e, token, attempts, Retry{State: queue.StateRetrying, Reason: describe(err), Due: d.now().Add(min(jitter(max(delay, d.cfg.RetryAfter)), d.cfg.RetryMaxDelay)), Refund: true}, err)
	case attempts >= d.cfg.MaxAttempts:
		w.dead(ctx, hard, log, e, token, fmt.Sprintf("gave up after %d attempts: %s", attempts, describe(err)), false)
	default:
		w.retry(ctx, hard, log, e, token, attempts, Retry{State: queue.StateRetrying, Reason: describe(err), Due: d.now().Add(d.retryDelay(attempts))}, err)
	}
}

func (w *worker) retry(ctx, hard context.Context, log *slog.Logger, e Entry, token string, attempts int, r Retry, cause error) {
	d := w.d
	d.metrics.Retried(e.Lane)
	log.WarnContext(ctx, "sender: delivery failed; it will be retried", "attempts", attempts, "state", r.State.String(), "next_attempt", r.Due, "err", describe(cause))
	if !d.retryStore(hard, func(ctx context.Context) error { return d.q.Retry(ctx, e, token, r, d.now()) }) {
		log.WarnContext(ctx, "sender: recording a retry failed; the entry stays pending and is claimed again")
	}
}

// giveBack releases a lease taken for an attempt that a failure to read
// the recipient's cancels stopped before the send, and takes the attempt
// back: the message is retried after RetryAfter as if throttled, so that
// however long one Cluster node is down, no attempts are spent and
// nothing is dead-lettered for it.
func (w *worker) giveBack(ctx, hard context.Context, log *slog.Logger, e Entry, token string, attempts int, cause error) {
	d := w.d
	w.retry(ctx, hard, log, e, token, attempts, Retry{State: queue.StateRetrying, Reason: "store: " + describe(cause), Due: d.now().Add(jitter(d.cfg.RetryAfter)), Refund: true}, cause)
}

func (w *worker) dead(ctx, hard context.Context, log *slog.Logger, e Entry, token, reason string, report bool) {
	d := w.d
	if d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkDead(ctx, e, token, reason, report, d.now()) }) {
		d.metrics.Dead(e.Lane)
		log.WarnContext(ctx, "sender: message dead-lettered", "reason", reason)
	}
}

// missing dead-letters an entry whose record cannot be read: an alarm, as
// it means Redis lost data (eviction, a partial restore).
func (w *worker) missing(ctx, hard context.Context, log *slog.Logger, e Entry, reason string) {
	d := w.d
	d.metrics.MissingRecord()
	log.ErrorContext(ctx, "sender: ALARM: "+reason+" (was Redis data evicted or lost?); the entry is dead-lettered", "stream_id", e.StreamID)
	d.retryStore(hard, func(ctx context.Context) error { return d.q.DeadLetterMissing(ctx, e, reason, d.now()) })
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
