package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
)

// Entry is one queue entry: a reference from a lane's stream in one
// partition to a message record.
type Entry struct {
	Partition int
	Lane      Lane
	// StreamID is the entry's id in its stream.
	StreamID string
	// MessageID is the message the entry refers to; empty for an entry the
	// store could not read (it is acknowledged and dropped).
	MessageID string
}

// Queue is what the Dispatcher needs from the store. Every method that
// changes a record is atomic, and MarkSent and MarkDead are idempotent: a
// message already finished is only acknowledged again.
type Queue interface {
	// Read delivers up to count new entries of the partition to consumer,
	// transactional entries first, waiting up to block for some to arrive.
	Read(ctx context.Context, partition int, consumer string, count int, block time.Duration) ([]Entry, error)
	// Claim takes over up to count entries of one lane that were delivered
	// to some consumer and not acknowledged for at least minIdle, scanning
	// from cursor ("0-0" for the start). It returns the next cursor ("0-0"
	// when the scan wrapped).
	Claim(ctx context.Context, partition int, lane Lane, consumer string, minIdle time.Duration, cursor string, count int) ([]Entry, string, error)
	// Extend resets the idle time of entries consumer still owns, so no
	// other consumer claims work that is in progress.
	Extend(ctx context.Context, consumer string, entries []Entry) error
	// GetMessage returns a message record, or ErrNotFound.
	GetMessage(ctx context.Context, id string) (Message, error)
	// GetContent returns a stored content, or ErrNotFound.
	GetContent(ctx context.Context, id string) (Content, error)
	// StartAttempt counts a delivery attempt and returns the new count.
	StartAttempt(ctx context.Context, e Entry, at time.Time) (int, error)
	// MarkSent records the delivery, counts it, acknowledges the entry and
	// lets the record expire in 30 days, all at once.
	MarkSent(ctx context.Context, e Entry, at time.Time) error
	// MarkDead records a permanent failure, counts it, acknowledges the
	// entry and lets the record expire in 30 days, all at once.
	MarkDead(ctx context.Context, e Entry, reason string, at time.Time) error
	// Retry records a temporary failure and leaves the entry pending, its
	// idle time reset, so it is claimed again after the retry delay.
	Retry(ctx context.Context, e Entry, consumer, reason string, at time.Time) error
	// Ack acknowledges an entry that needs no delivery.
	Ack(ctx context.Context, e Entry) error
}

// Mail is one message ready for the relay.
type Mail struct {
	// MessageID is the message id; the mailer makes the Message-ID header
	// from it.
	MessageID string
	To        string
	Lane      Lane
	mailtemplate.Rendered
	// ListUnsubscribeURL is empty, https (one-click) or http to a loopback
	// host.
	ListUnsubscribeURL string
}

// Mailer opens connections to the relay.
type Mailer interface {
	// Dial opens a connection ready to send.
	Dial(ctx context.Context) (Conn, error)
}

// Conn is one connection to the relay, used by one worker at a time.
type Conn interface {
	// Send sends one message. nil means the relay accepted it (the 250 after
	// DATA); an error wrapping ErrRejected means it refused it permanently;
	// any other error is temporary or a broken connection. When ctx is done
	// the send is cut off (the connection is closed).
	Send(ctx context.Context, m *Mail) error
	// Reusable reports whether the connection can carry another message.
	Reusable() bool
	// Close ends the session.
	Close() error
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Partitions is the number of queue partitions (fixed for the life of
	// the queue).
	Partitions int
	// Workers is the number of delivery goroutines, each with one SMTP
	// connection.
	Workers int
	// Consumer is this process's consumer name in the consumer group.
	Consumer string
	// MaxAttempts is how many delivery attempts a message gets before it
	// is dead-lettered.
	MaxAttempts int
	// RetryAfter is how long an entry stays pending before it is claimed
	// again: the retry delay after a temporary failure and the time before
	// a dead consumer's work is taken over. It also caps the backoff between
	// dials to an unreachable relay.
	RetryAfter time.Duration
	// MaxPerConn is how many messages a connection carries before it is
	// replaced.
	MaxPerConn int
	// Grace is how long in-flight sends may take to finish at shutdown
	// before their connections are closed.
	Grace time.Duration
	// Logger is required.
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Tuning that does not need configuring.
const (
	// readBlock is how long a reader waits in XREADGROUP for new entries.
	// go-redis does not interrupt a blocking read when its context is
	// cancelled, so this also bounds how long shutdown waits for readers;
	// the cost is a few idle reads per second per partition.
	readBlock = 250 * time.Millisecond
	// maxBatch bounds the entries one read or claim fetches.
	maxBatch = 100
	// maxIdle is how long a connection may sit unused before it is replaced
	// instead of reused: relays drop idle sessions (often after 60-300 s),
	// and since NOOP is off, a dead connection would cost a message attempt.
	maxIdle = 30 * time.Second
	// contentCacheSize bounds the compiled templates kept in memory. Content
	// is immutable by id, so the cache is never stale.
	contentCacheSize = 64
	// maxErrorLen bounds a recorded last_error.
	maxErrorLen = 500
	// storeRetryMax caps the backoff of retried store operations.
	storeRetryMax = 5 * time.Second
)

// Dispatcher reads the queue and delivers mail: per partition a reader for
// new entries and a reclaimer for stale ones, a shared pool of workers, and
// a heartbeat that keeps in-progress entries from being claimed by others.
type Dispatcher struct {
	cfg    DispatcherConfig
	q      Queue
	mailer Mailer
	log    *slog.Logger
	now    func() time.Time

	// slots bounds the entries read but not finished (in a channel or in a
	// worker); readers fetch only as many entries as they hold slots.
	slots   chan struct{}
	perRead int
	tx      chan Entry
	bulk    chan Entry

	inflight inflight
	contents contentCache
}

// NewDispatcher returns a Dispatcher; call Run to start it.
func NewDispatcher(cfg DispatcherConfig, q Queue, mailer Mailer) (*Dispatcher, error) {
	switch {
	case cfg.Partitions < 1, cfg.Workers < 1, cfg.MaxAttempts < 1, cfg.MaxPerConn < 1:
		return nil, errors.New("queue: dispatcher: Partitions, Workers, MaxAttempts and MaxPerConn must be positive")
	case cfg.RetryAfter <= 0:
		return nil, errors.New("queue: dispatcher: RetryAfter must be positive")
	case cfg.Consumer == "":
		return nil, errors.New("queue: dispatcher: Consumer is required")
	case cfg.Logger == nil:
		return nil, errors.New("queue: dispatcher: Logger is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	total := max(4*cfg.Workers, cfg.Partitions)
	return &Dispatcher{
		cfg:      cfg,
		q:        q,
		mailer:   mailer,
		log:      cfg.Logger,
		now:      cfg.Now,
		slots:    make(chan struct{}, total),
		perRead:  max(1, min(maxBatch, total/cfg.Partitions)),
		tx:       make(chan Entry, total),
		bulk:     make(chan Entry, total),
		inflight: inflight{m: map[entryKey]Entry{}},
		contents: contentCache{m: map[string]*mailtemplate.Compiled{}},
	}, nil
}

// Run delivers until ctx is done, then stops reading, lets in-flight sends
// finish (cutting them off after Grace) and returns nil. Work that was read
// but not delivered stays pending in the store and is claimed again later:
// nothing is acknowledged unless it was delivered or dead-lettered.
func (d *Dispatcher) Run(ctx context.Context) error {
	// hard is cancelled Grace after ctx: it bounds in-flight sends and the
	// store writes that record their outcome.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	go func() {
		select {
		case <-ctx.Done():
		case <-hard.Done():
			return
		}
		t := time.NewTimer(d.cfg.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelHard()
		case <-hard.Done():
		}
	}()

	var wg, workers sync.WaitGroup
	for p := range d.cfg.Partitions {
		wg.Go(func() { d.readLoop(ctx, p) })
		wg.Go(func() { d.reclaimLoop(ctx, p) })
	}
	for range d.cfg.Workers {
		workers.Go(func() { d.workLoop(ctx, hard) })
	}
	// The heartbeat outlives ctx until the last worker is done: sends that
	// finish during the grace period are still ours, and another replica
	// must not claim (and send) them meanwhile.
	beat, stopBeat := context.WithCancel(hard)
	defer stopBeat()
	wg.Go(func() { d.heartbeatLoop(beat) })
	workers.Wait()
	stopBeat()
	wg.Wait()
	return nil
}

// acquire takes between 1 and n slots, waiting for the first one. It
// returns 0 when ctx is done.
func (d *Dispatcher) acquire(ctx context.Context, n int) int {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	got := 1
	for got < n {
		select {
		case d.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

// acquireOne takes one slot; it reports false when ctx is done first.
func (d *Dispatcher) acquireOne(ctx context.Context) bool {
	select {
	case d.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *Dispatcher) release(n int) {
	for range n {
		<-d.slots
	}
}

// dispatch hands entries to the workers, each holding a slot already.
// Entries that are already in progress here (a claim can return them) give
// their slot back.
func (d *Dispatcher) dispatch(entries []Entry) {
	for _, lane := range Lanes() { // transactional first
		for _, e := range entries {
			if e.Lane != lane {
				continue
			}
			if !d.inflight.add(e) {
				d.release(1)
				continue
			}
			d.hand(e)
		}
	}
}

// hand puts an entry that is in d.inflight and holds a slot into its lane's
// channel. It never blocks: each channel holds as many entries as there are
// slots.
func (d *Dispatcher) hand(e Entry) {
	if e.Lane == LaneTransactional {
		d.tx <- e
	} else {
		d.bulk <- e
	}
}

// next returns the next entry for a worker, transactional first.
func (d *Dispatcher) next(ctx context.Context) (Entry, bool) {
	if ctx.Err() != nil {
		return Entry{}, false
	}
	select {
	case e := <-d.tx:
		return e, true
	default:
	}
	select {
	case e := <-d.tx:
		return e, true
	case e := <-d.bulk:
		return e, ctx.Err() == nil
	case <-ctx.Done():
		return Entry{}, false
	}
}

// finished releases an entry's slot after a worker is done with it.
func (d *Dispatcher) finished(e Entry) {
	d.inflight.remove(e)
	d.release(1)
}

func (d *Dispatcher) readLoop(ctx context.Context, p int) {
	bo := backoff{min: 50 * time.Millisecond, max: storeRetryMax}
	failing := false
	for {
		n := d.acquire(ctx, d.perRead)
		if n == 0 {
			return
		}
		entries, err := d.q.Read(ctx, p, d.cfg.Consumer, n, readBlock)
		if err != nil {
			d.release(n)
			if ctx.Err() != nil {
				return
			}
			if !failing {
				d.log.WarnContext(ctx, "sender: reading the queue failed; retrying", "partition", p, "err", err)
				failing = true
			}
			if !sleep(ctx, bo.next()) {
				return
			}
			continue
		}
		if failing {
			d.log.InfoContext(ctx, "sender: reading the queue works again", "partition", p)
			failing = false
		}
		bo.reset()
		// COUNT applies per stream, so a read can return up to 2n entries
		// (transactional first). Hand over the n we hold slots for before
		// waiting for more: waiting while holding undispatched entries
		// could deadlock every reader with idle workers.
		held := min(n, len(entries))
		d.release(n - held)
		d.dispatch(entries[:held])
		// The rest are ours too: put them in flight now, so that the
		// heartbeat keeps them from being claimed by another replica
		// however long the wait for slots takes.
		var rest []Entry
		for _, e := range entries[held:] {
			if d.inflight.add(e) {
				rest = append(rest, e)
			}
		}
		for i, e := range rest {
			if !d.acquireOne(ctx) {
				for _, e := range rest[i:] {
					d.inflight.remove(e) // stays pending and is claimed later
				}
				return
			}
			d.hand(e)
		}
	}
}

func (d *Dispatcher) reclaimLoop(ctx context.Context, p int) {
	t := time.NewTicker(d.cfg.RetryAfter / 2)
	defer t.Stop()
	cursors := map[Lane]string{LaneTransactional: "0-0", LaneBulk: "0-0"}
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		for _, lane := range Lanes() {
			n := d.acquire(ctx, min(d.perRead, maxBatch))
			if n == 0 {
				return
			}
			entries, next, err := d.q.Claim(ctx, p, lane, d.cfg.Consumer, d.cfg.RetryAfter, cursors[lane], n)
			if err != nil {
				d.release(n)
				if ctx.Err() == nil {
					d.log.WarnContext(ctx, "sender: claiming stale entries failed", "partition", p, "lane", lane.String(), "err", err)
				}
				continue
			}
			cursors[lane] = next
			d.release(n - len(entries))
			if len(entries) > 0 {
				d.log.DebugContext(ctx, "sender: claimed stale entries", "partition", p, "lane", lane.String(), "count", len(entries))
			}
			d.dispatch(entries)
		}
	}
}

// heartbeatLoop resets the idle time of the entries in progress here, well
// before RetryAfter, so that a slow send or a backlog in the channels is not
// mistaken for a dead consumer's work.
//
// This is a stand-in for the per-message lease mark of DESIGN §4 (a later
// issue): if this process stalls longer than RetryAfter, another replica
// may claim and send an entry that is still in progress here.
func (d *Dispatcher) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.RetryAfter / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		entries := d.inflight.snapshot()
		if len(entries) == 0 {
			continue
		}
		if err := d.q.Extend(ctx, d.cfg.Consumer, entries); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "sender: extending in-progress entries failed", "count", len(entries), "err", err)
		}
	}
}

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
	case errors.Is(err, ErrNotFound):
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
	if errors.Is(err, ErrNotFound) {
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
	d.cfg.Metrics.observeSend(d.now().Sub(start))
	w.sent++
	w.lastUsed = d.now()
	if !w.conn.Reusable() {
		w.dropConn()
	}
	switch {
	case err == nil:
		if d.retryStore(hard, func(ctx context.Context) error { return d.q.MarkSent(ctx, e, d.now()) }) {
			d.cfg.Metrics.observeSent(e.Lane)
			log.DebugContext(ctx, "sender: delivered", "attempts", attempts)
		} else {
			log.ErrorContext(ctx, "sender: delivered but could not record it before shutdown; the message may be sent again")
		}
	case errors.Is(err, ErrRejected):
		w.dead(ctx, hard, log, e, describe(err))
	case attempts >= d.cfg.MaxAttempts:
		w.dead(ctx, hard, log, e, fmt.Sprintf("gave up after %d attempts: %s", attempts, describe(err)))
	default:
		d.cfg.Metrics.observeRetried(e.Lane)
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
		d.cfg.Metrics.observeDead(e.Lane)
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

type entryKey struct {
	partition int
	lane      Lane
	streamID  string
}

// inflight is the set of entries held here (in a channel, in a worker, or
// read and waiting for a slot).
type inflight struct {
	mu sync.Mutex
	m  map[entryKey]Entry
}

func (f *inflight) add(e Entry) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := entryKey{e.Partition, e.Lane, e.StreamID}
	if _, ok := f.m[k]; ok {
		return false
	}
	f.m[k] = e
	return true
}

func (f *inflight) remove(e Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, entryKey{e.Partition, e.Lane, e.StreamID})
}

func (f *inflight) snapshot() []Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Entry, 0, len(f.m))
	for _, e := range f.m {
		out = append(out, e)
	}
	return out
}

// contentCache keeps recently used compiled templates, evicting the oldest.
type contentCache struct {
	mu    sync.Mutex
	m     map[string]*mailtemplate.Compiled
	order []string
}

func (c *contentCache) get(id string) (*mailtemplate.Compiled, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[id]
	return t, ok
}

func (c *contentCache) put(id string, t *mailtemplate.Compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return
	}
	if len(c.order) >= contentCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[id] = t
	c.order = append(c.order, id)
}

// backoff yields exponentially growing, jittered waits between min and max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits for d; it reports false if ctx is done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
