package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RateLimiter is delivery.RateLimiter on Redis: GCRA limits (go-redis
// redis_rate) shared by every replica, one global and one for the relay.
// A zero rate means no limit.
type RateLimiter struct {
	limiter *redis_rate.Limiter
	limits  []rateLimit
	// onLimited, if set, is told the name of each limit that refuses a send.
	onLimited func(limit string)
}

type rateLimit struct {
	name  string // "relay" or "global", for metrics
	key   string
	limit redis_rate.Limit
}

// NewRateLimiter limits sends to global messages/s over all relays and
// perRelay messages/s to the relay named relay (its address).
func NewRateLimiter(rdb redis.UniversalClient, global, perRelay int, relay string) *RateLimiter {
	r := &RateLimiter{limiter: redis_rate.NewLimiter(rdb)}
	if perRelay > 0 {
		r.limits = append(r.limits, rateLimit{name: "relay", key: "snd:rate:relay:" + relay, limit: redis_rate.PerSecond(perRelay)})
	}
	if global > 0 {
		r.limits = append(r.limits, rateLimit{name: "global", key: "snd:rate:global", limit: redis_rate.PerSecond(global)})
	}
	return r
}

// OnLimited makes r call f with the limit's name ("global" or "relay")
// each time a limit refuses a send (the send waits and asks again). It
// returns r.
func (r *RateLimiter) OnLimited(f func(limit string)) *RateLimiter {
	r.onLimited = f
	return r
}

// Reserve implements delivery.RateLimiter: it takes one send from every
// limit, or returns how long to wait before asking again.
func (r *RateLimiter) Reserve(ctx context.Context) (time.Duration, error) {
	for _, l := range r.limits {
		res, err := r.limiter.Allow(ctx, l.key, l.limit)
		if err != nil {
			return 0, fmt.Errorf("redisstore: rate limit %s: %w", l.key, err)
		}
		if res.Allowed == 0 {
			if r.onLimited != nil {
				r.onLimited(l.name)
			}
			return max(res.RetryAfter, time.Millisecond), nil
		}
	}
	return 0, nil
}
