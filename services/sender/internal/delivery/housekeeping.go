package delivery

import (
	"context"
	"time"
)

// Housekeeping intervals.
const (
	// pausePoll is how often the kill switch is read from the store: a
	// pause stops new sends within this time on every replica.
	pausePoll = 500 * time.Millisecond
	// maintainEvery is how often streams are trimmed and stale consumers
	// removed.
	maintainEvery = time.Minute
	// promoteBatch bounds the delayed retries moved back per run.
	promoteBatch = 500
)

// pauseLoop keeps the kill switch's state. Until the first read succeeds
// nothing is sent: a pause must survive restarts.
func (d *Dispatcher) pauseLoop(ctx context.Context) {
	t := time.NewTicker(pausePoll)
	defer t.Stop()
	failing := false
	for {
		p, err := d.q.GetPause(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			d.log.WarnContext(ctx, "sender: reading the pause switch failed; keeping its last state", "err", err)
			failing = true
		case err == nil:
			failing = false
			d.setPaused(ctx, p.Paused, p.Reason)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (d *Dispatcher) setPaused(ctx context.Context, paused bool, reason string) {
	d.pauseMu.Lock()
	defer d.pauseMu.Unlock()
	open := isClosed(d.unpaused)
	switch {
	case paused && open:
		d.unpaused = make(chan struct{})
		d.log.WarnContext(ctx, "sender: sending is paused", "reason", reason)
	case !paused && !open:
		if d.paused {
			d.log.InfoContext(ctx, "sender: sending resumed")
		}
		close(d.unpaused)
	}
	d.paused = paused
}

// waitUnpaused blocks while sending is paused; false if ctx ends first.
func (d *Dispatcher) waitUnpaused(ctx context.Context) bool {
	d.pauseMu.Lock()
	ch := d.unpaused
	d.pauseMu.Unlock()
	select {
	case <-ch:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// promoteLoop moves due delayed retries of partition p back into their
// streams.
func (d *Dispatcher) promoteLoop(ctx context.Context, p int) {
	every := min(max(d.cfg.RetryAfter/4, 20*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		for {
			n, err := d.q.PromoteDue(ctx, p, d.now(), promoteBatch)
			if err != nil {
				if ctx.Err() == nil {
					d.log.WarnContext(ctx, "sender: moving due retries back failed", "partition", p, "err", err)
				}
				break
			}
			if n < promoteBatch {
				break
			}
		}
	}
}

// maintainLoop trims acknowledged entries and removes stale consumers of
// partition p.
func (d *Dispatcher) maintainLoop(ctx context.Context, p int) {
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		if err := d.q.Maintain(ctx, p, d.cfg.Consumer, d.cfg.StaleConsumerAfter); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "sender: stream maintenance failed", "partition", p, "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// isPaused reports whether sending is paused, as last read from the store.
func (d *Dispatcher) isPaused() bool {
	d.pauseMu.Lock()
	defer d.pauseMu.Unlock()
	return !isClosed(d.unpaused)
}
