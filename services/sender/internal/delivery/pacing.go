package delivery

import (
	"context"
	"time"
)

// RelayPacer paces the sends to each relay for all replicas together: the
// relay's messages/s limit, and the slowdown its throttling replies (421,
// 451, 454) asked for. Implemented on Redis by internal/redisstore. With a
// RelayPacer the dispatcher's own per-process throttle is not used.
type RelayPacer interface {
	// Reserve takes one send to relay, or says how long to wait before
	// asking again.
	Reserve(ctx context.Context, relay string) (wait time.Duration, err error)
	// SlowDown records a throttling reply from relay and returns the gap
	// between sends now asked of every replica.
	SlowDown(ctx context.Context, relay string) (gap time.Duration, err error)
	// Delivered notes a message relay accepted, which eases a slowdown;
	// it must not block (no I/O per message).
	Delivered(relay string)
}

// Relayed is implemented by a Conn that can tell which relay it is
// connected to (with failover, one of several). A Conn that cannot is
// paced as relay "".
type Relayed interface {
	Relay() string
}

// relayOf is the relay c is connected to, "" if it cannot tell.
func relayOf(c Conn) string {
	if r, ok := c.(Relayed); ok {
		return r.Relay()
	}
	return ""
}

// pace waits until a send to relay may start: the relay's pacing (shared,
// or this process's throttle without a RelayPacer), then the global rate
// limit. It reports false if ctx ends first. If the pacer cannot be asked
// (Redis trouble, which the send's own store writes will meet too), the
// send goes ahead after a warning, like with the rate limiter.
func (d *Dispatcher) pace(ctx context.Context, relay string) bool {
	if d.cfg.Pacer == nil {
		return d.throttle.wait(ctx) && d.rateWait(ctx)
	}
	for {
		wait, err := d.cfg.Pacer.Reserve(ctx, relay)
		if err != nil {
			d.log.WarnContext(ctx, "sender: the relay pacer failed; sending unpaced", "relay", relay, "err", err)
			if ctx.Err() != nil {
				return false
			}
			break
		}
		if wait <= 0 {
			break
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
	// The local throttle is idle unless recording a slowdown in the pacer
	// failed.
	return d.throttle.wait(ctx) && d.rateWait(ctx)
}

// slowDown records a throttling reply from relay and returns the gap now
// asked between sends (the least delay for the throttled message's retry).
func (d *Dispatcher) slowDown(ctx context.Context, relay string) time.Duration {
	if d.cfg.Pacer == nil {
		return d.throttle.slowDown()
	}
	gap, err := d.cfg.Pacer.SlowDown(ctx, relay)
	if err != nil {
		d.log.WarnContext(ctx, "sender: recording a throttling reply failed; slowing this process only", "relay", relay, "err", err)
		return d.throttle.slowDown()
	}
	return gap
}

// sendSucceeded eases the relay's slowdown.
func (d *Dispatcher) sendSucceeded(relay string) {
	d.throttle.success()
	if d.cfg.Pacer != nil {
		d.cfg.Pacer.Delivered(relay)
	}
}
