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
	var next *prepared
	for {
		var e Entry
		if next != nil {
			e = next.e
		} else {
			var ok bool
			if e, ok = d.next(ctx); !ok {
				return
			}
		}
		next = w.handle(ctx, hard, e, next)
		// A connection lent for one message (smtpmail.Pool) goes back even
		// when nothing was sent on it (a held lease, a cancel, a dead
		// letter): kept while this worker waits for its next entry, it
		// could leave the workers holding the last entries waiting for it
		// forever.
		w.dropSpent()
		d.finished(e)
	}
}

// prepared is an entry a worker took on before handling it: its record,
// and when the worker took its lease together with recording the message
// before (recordSent), the lease.
type prepared struct {
	e      Entry
	msg    queue.Message
	msgErr error
	// leased is when the lease was asked for; zero when it was not.
	leased   time.Time
	lease    Lease
	leaseErr error
}

// handle takes one entry through delivery (DESIGN §4). It acknowledges the
// entry only together with a final record (SENT, DEAD, CANCELLED) or a
// scheduled retry; on any other path the entry stays pending and is claimed
// again after RetryAfter. Between Lease and that final step this consumer
// holds the message's delivery lease; the send itself is bounded by the
// lease, renewed just before it unless it was taken moments before.
//
// pre, if not nil, is e prepared by the previous handle; handle returns the
// worker's next entry when it took it on early (see recordSent).
func (w *worker) handle(ctx, hard context.Context, e Entry, pre *prepared) *prepared {
	d := w.d
	log := d.log.With("message_id", e.MessageID, "lane", e.Lane.String(), "partition", e.Partition)
	if pre == nil {
		pre = d.load(hard, e)
	}
	msg, err := pre.msg, pre.msgErr
	switch {
	case e.MessageID == "":
		w.missing(ctx, hard, log, e, "the queue entry has no valid message id")
		return nil
	case errors.Is(err, queue.ErrNotFound):
		w.missing(ctx, hard, log, e, "the message record is missing")
		return nil
	case err != nil:
		log.WarnContext(ctx, "sender: loading a message failed; it will be retried", "err", err)
		return nil
	case msg.State.Done():
		// A redelivery of a finished message (e.g. its ack was lost).
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return nil
	}
	if !d.waitUnpaused(ctx) {
		return nil // shutting down while paused: the entry stays pending
	}
	// Connect before taking the lease (unless it was taken with the last
	// message's record): a relay outage must not hold leases. A connection
	// lent for this message (which may already carry its envelope) goes
	// back when the entry is done, sent or not (workLoop).
	if !w.connect(ctx, Envelope{MessageID: msg.ID, To: msg.Recipient}) || ctx.Err() != nil {
		return nil // shutting down: never start a send
	}
	leased, lease, err := pre.leased, pre.lease, pre.leaseErr
	if leased.IsZero() {
		// Taken before the request, so the lease's end as computed here
		// is never later than the end Redis gives it.
		leased = d.now()
		lease, err = d.q.Lease(hard, e, LeaseRequest{Consumer: d.cfg.Consumer, Duration: d.cfg.Lease, At: leased, Recipient: msg.Recipient})
	}
	leaseEnd := leased.Add(d.cfg.Lease)
	switch {
	case err != nil && lease.Result == LeaseAcquired:
		// Taken, but the cancels are unknown: a Redis outage (another
		// Cluster node down) must cost the message no attempt.
		w.giveBack(ctx, hard, log, e, lease.Token, lease.Attempts, err)
		return nil
	case err != nil:
		log.WarnContext(ctx, "sender: taking the delivery lease failed; the message will be retried", "err", err)
		return nil
	case lease.Result == LeaseSent:
		d.retryStore(hard, func(ctx context.Context) error { return d.q.Ack(ctx, e) })
		return nil
	case lease.Result == LeaseHeld:
		// Another worker is sending it now: it acknowledges the entry when
		// done, or its lease ends and the entry is claimed again.
		log.DebugContext(ctx, "sender: another worker holds the delivery lease")
		return nil
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
		return nil
	}
	tmpl, err := d.content(hard, msg.ContentID)
	if errors.Is(err, queue.ErrNotFound) {
		w.dead(ctx, hard, log, e, token, "content "+msg.ContentID+" is no longer stored", false)
		return nil
	}
	if err != nil {
		log.WarnContext(ctx, "sender: loading content failed; the message will be retried", "err", err)
		return nil
	}
	if attempts > d.cfg.MaxAttempts {
		// Earlier attempts never recorded an outcome (e.g. crashes mid-send).
		w.dead(ctx, hard, log, e, token, fmt.Sprintf("gave up after %d attempts without an outcome", attempts-1), false)
		return nil
	}
	relay := relayOf(w.conn)
	if !d.pace(ctx, relay) {
		return nil
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
			return nil
		case !held:
			d.metrics.LeaseLost()
			log.WarnContext(ctx, "sender: the delivery lease was lost before the send; another worker owns the message")
			return nil
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
	return w.outcome(ctx, hard, log, e, token, attempts, relay, reply, err)
}

// outcome records what a send to relay did. After a delivery it may take
// on the worker's next entry (recordSent) and return it.
func (w *worker) outcome(ctx, hard context.Context, log *slog.Logger, e Entry, token string, attempts int, relay, reply string, err error) *prepared {
	d := w.d
	switch {
	case err == nil:
		d.sendSucceeded(relay)
		return w.recordSent(ctx, hard, log, e, attempts, reply)
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
	return nil
}

// recordSent records a delivered message. When the worker's next entry is
// already waiting and can be sent, it loads it and asks for its lease in
// the same round trip as the record (MarkSentAndLease), and returns it
// prepared: one Redis round trip per message on the worker's path instead
// of two. Nothing is sent before the record is written either way, so a
// worker still has at most one delivered message without its sent mark.
func (w *worker) recordSent(ctx, hard context.Context, log *slog.Logger, e Entry, attempts int, reply string) *prepared {
	d := w.d
	var next *prepared
	recorded := false
	if n, ok := d.tryNext(ctx); ok {
		next = d.load(hard, n)
		if next.msgErr == nil && n.MessageID != "" && !next.msg.State.Done() && !d.isPaused() {
			at := d.now()
			res := d.q.MarkSentAndLease(hard, e, reply, at, n, LeaseRequest{Consumer: d.cfg.Consumer, Duration: d.cfg.Lease, At: at, Recipient: next.msg.Recipient})
			next.leased, next.lease, next.leaseErr = at, res.Lease, res.LeaseErr
			recorded = res.SentErr == nil
		}
	}
	if !recorded {
		recorded = d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkSent(ctx, e, reply, d.now()) })
	}
	if recorded {
		d.metrics.Sent(e.Lane)
		log.DebugContext(ctx, "sender: delivered", "attempts", attempts)
	} else {
		log.ErrorContext(ctx, "sender: delivered but could not record it; the message may be sent again")
	}
	return next
}

// load reads an entry's record (the dispatcher's store serves it from the
// read-ahead).
func (d *Dispatcher) load(ctx context.Context, e Entry) *prepared {
	p := &prepared{e: e}
	if e.MessageID != "" {
		p.msg, p.msgErr = d.q.GetMessage(ctx, e.MessageID)
	}
	return p
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

// connect makes sure the worker has a fresh connection for the message of
// env, dialling with backoff for as long as the relay is unreachable. Dial
// failures do not count as message attempts: an outage of the relay must
// not dead-letter the queue. It reports false when ctx is done first.
func (w *worker) connect(ctx context.Context, env Envelope) bool {
	d := w.d
	if w.conn != nil && (w.sent >= d.cfg.MaxPerConn || d.now().Sub(w.lastUsed) > maxIdle) {
		w.dropConn()
	}
	for w.conn == nil {
		conn, err := DialFor(ctx, d.mailer, env)
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

// dropSpent closes a connection that cannot carry another message (a
// pool's lease, bound to the message it was dialled for).
func (w *worker) dropSpent() {
	if w.conn != nil && !w.conn.Reusable() {
		w.dropConn()
	}
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
