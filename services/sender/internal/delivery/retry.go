package delivery

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// retryDelay is the wait before retry number attempts+1 after a temporary
// failure: RetryAfter doubled per attempt, capped at RetryMaxDelay, with
// jitter so a burst of failures does not come back as a burst.
func (d *Dispatcher) retryDelay(attempts int) time.Duration {
	delay := d.cfg.RetryAfter
	for i := 1; i < attempts && delay < d.cfg.RetryMaxDelay; i++ {
		delay *= 2
	}
	return min(jitter(delay), d.cfg.RetryMaxDelay)
}

// jitter returns a random duration between d and 1.5 d.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/2+1)
}

// freshLease is how recently a lease must have been taken for the send to
// go ahead without renewing it first. The send is bounded by the lease's
// end either way, so renewing a lease taken moments ago would only add a
// Redis round trip; a small fraction keeps the send's time budget close to
// a whole lease.
func freshLease(lease time.Duration) time.Duration {
	return min(lease/20, time.Second)
}

// leaseMargin is how long before the lease ends a send is cut off, so that
// the lease is still ours when the outcome is written.
func leaseMargin(lease time.Duration) time.Duration {
	return min(lease/10, 2*time.Second)
}

// throttle slows all sends to one relay after it answered 421, 451 or 454,
// and speeds up again as sends succeed: an adaptive gap between sends.
type throttle struct {
	mu     sync.Mutex
	gap    time.Duration
	maxGap time.Duration
	next   time.Time
	now    func() time.Time
}

// throttleMinGap is the first gap after a throttling reply; the longest is
// min(10s, RetryMaxDelay).
const throttleMinGap = 20 * time.Millisecond

// wait blocks until the next send may start; false if ctx ends first.
func (t *throttle) wait(ctx context.Context) bool {
	t.mu.Lock()
	if t.gap == 0 {
		t.mu.Unlock()
		return true
	}
	now := t.now()
	at := t.next
	if at.Before(now) {
		at = now
	}
	t.next = at.Add(t.gap)
	t.mu.Unlock()
	return sleep(ctx, at.Sub(now))
}

// slowDown doubles the gap and returns it.
func (t *throttle) slowDown() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gap = min(max(2*t.gap, throttleMinGap), t.maxGap)
	return t.gap
}

// success shrinks the gap, ending the slowdown after enough successes.
func (t *throttle) success() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gap == 0 {
		return
	}
	t.gap = t.gap * 9 / 10
	if t.gap < throttleMinGap {
		t.gap = 0
	}
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
	return b.cur/2 + rand.N(b.cur/2+1)
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

// rateWait waits for the shared rate limits; false if ctx ends first. If
// the limiter cannot be asked (Redis trouble, which the send's own store
// writes will meet too), it lets the send go after logging.
func (d *Dispatcher) rateWait(ctx context.Context) bool {
	if d.cfg.RateLimiter == nil {
		return true
	}
	for {
		wait, err := d.cfg.RateLimiter.Reserve(ctx)
		switch {
		case err != nil:
			d.log.WarnContext(ctx, "sender: the rate limiter failed; sending unlimited", "err", err)
			return ctx.Err() == nil
		case wait <= 0:
			return true
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
}
