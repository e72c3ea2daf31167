package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

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
	// again (the time before a dead consumer's work is taken over), the
	// first retry delay after a temporary failure, and the cap of the
	// backoff between dials to an unreachable relay.
	RetryAfter time.Duration
	// RetryMaxDelay caps the exponential backoff between retries
	// (default: 64 × RetryAfter).
	RetryMaxDelay time.Duration
	// Lease is how long a worker's delivery lease on a message lasts: the
	// longest a send may take, and after a crash, how long before another
	// worker may send the message again. It must exceed the SMTP timeout.
	Lease time.Duration
	// RetryUnknown retries a message once after an unknown outcome (the
	// relay may have it: at most one extra copy); false dead-letters it
	// instead (a possible loss rather than a possible duplicate).
	RetryUnknown bool
	// StaleConsumerAfter is how long a consumer that owns nothing must be
	// idle before it is removed from the group (default 1h).
	StaleConsumerAfter time.Duration
	// MaxPerConn is how many messages a connection carries before it is
	// replaced.
	MaxPerConn int
	// Grace is how long in-flight sends may take to finish at shutdown
	// before their connections are closed.
	Grace time.Duration
	// Logger is required.
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics Metrics
	// RateLimiter, if set, bounds the sends per second across replicas.
	RateLimiter RateLimiter
	// Pacer, if set, paces the sends to each relay across replicas (its
	// limit and the slowdown its throttling replies ask for); nil slows a
	// throttling relay for this process only.
	Pacer RelayPacer
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
	// entriesPerWorker is how many entries the dispatcher holds (read and
	// not finished) per worker. Reads fetch what the free slots allow, so
	// more slots mean fewer, larger reads (one XREADGROUP and one pipeline
	// of record loads each); entries held here are pending under this
	// consumer, not leased, so a crash only delays them by RetryAfter.
	entriesPerWorker = 4
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
	cfg     DispatcherConfig
	q       Queue
	mailer  Mailer
	log     *slog.Logger
	metrics Metrics
	now     func() time.Time

	// slots bounds the entries read but not finished (in a channel or in a
	// worker); readers fetch only as many entries as they hold slots.
	slots   chan struct{}
	perRead int
	tx      chan Entry
	bulk    chan Entry

	inflight inflight
	contents contentCache
	throttle *throttle

	// pause is the kill switch as last read from the store; unpaused is
	// closed while sending is allowed.
	pauseMu  sync.Mutex
	paused   bool
	unpaused chan struct{}
}

// NewDispatcher returns a Dispatcher; call Run to start it.
func NewDispatcher(cfg DispatcherConfig, q Queue, mailer Mailer) (*Dispatcher, error) {
	switch {
	case cfg.Partitions < 1, cfg.Workers < 1, cfg.MaxAttempts < 1, cfg.MaxPerConn < 1:
		return nil, errors.New("delivery: dispatcher: Partitions, Workers, MaxAttempts and MaxPerConn must be positive")
	case cfg.RetryAfter <= 0, cfg.Lease <= 0:
		return nil, errors.New("delivery: dispatcher: RetryAfter and Lease must be positive")
	case cfg.Consumer == "":
		return nil, errors.New("delivery: dispatcher: Consumer is required")
	case cfg.Logger == nil:
		return nil, errors.New("delivery: dispatcher: Logger is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = 64 * cfg.RetryAfter
	}
	if cfg.StaleConsumerAfter <= 0 {
		cfg.StaleConsumerAfter = time.Hour
	}
	var m Metrics = noMetrics{}
	if cfg.Metrics != nil {
		m = cfg.Metrics
	}
	total := max(entriesPerWorker*cfg.Workers, cfg.Partitions)
	return &Dispatcher{
		cfg:      cfg,
		q:        q,
		mailer:   mailer,
		log:      slog.New(lazyAttrs{h: cfg.Logger.Handler()}),
		metrics:  m,
		now:      cfg.Now,
		slots:    make(chan struct{}, total),
		perRead:  max(1, min(maxBatch, total/cfg.Partitions)),
		tx:       make(chan Entry, total),
		bulk:     make(chan Entry, total),
		inflight: inflight{m: map[entryKey]Entry{}},
		throttle: &throttle{now: cfg.Now, maxGap: min(10*time.Second, cfg.RetryMaxDelay)},
		unpaused: make(chan struct{}),
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
	wg.Go(func() { d.pauseLoop(ctx) })
	for p := range d.cfg.Partitions {
		wg.Go(func() { d.readLoop(ctx, p) })
		wg.Go(func() { d.reclaimLoop(ctx, p) })
		wg.Go(func() { d.promoteLoop(ctx, p) })
		wg.Go(func() { d.maintainLoop(ctx, p) })
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

// acquire takes between n/2 (at least 1) and n slots, waiting for the
// first n/2: when the workers are busy, slots come back one at a time, and
// a read per free slot would cost a Redis round trip (and a pipeline of
// record loads) per message. Waiting for half a batch cannot starve the
// workers: readers and reclaimers of all partitions together hold fewer
// than 2 × partitions × n/2 ≤ total slots while they wait, so entries are
// always in flight and slots keep coming back. It returns 0 when ctx is
// done.
func (d *Dispatcher) acquire(ctx context.Context, n int) int {
	got := 0
	for want := max(1, n/2); got < want; got++ {
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			d.release(got)
			return 0
		}
	}
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
	for _, lane := range queue.Lanes() { // transactional first
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
	if e.Lane == queue.LaneTransactional {
		d.tx <- e
	} else {
		d.bulk <- e
	}
}

// next returns the next entry for a worker, transactional first.
func (d *Dispatcher) next(ctx context.Context) (Entry, bool) {
	if e, ok := d.tryNext(ctx); ok || ctx.Err() != nil {
		return e, ok
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
	cursors := map[queue.Lane]string{queue.LaneTransactional: "0-0", queue.LaneBulk: "0-0"}
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		for _, lane := range queue.Lanes() {
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

// tryNext returns the next entry for a worker if one is waiting,
// transactional first, without waiting.
func (d *Dispatcher) tryNext(ctx context.Context) (Entry, bool) {
	if ctx.Err() != nil {
		return Entry{}, false
	}
	select {
	case e := <-d.tx:
		return e, true
	default:
	}
	select {
	case e := <-d.bulk:
		return e, true
	default:
		return Entry{}, false
	}
}
