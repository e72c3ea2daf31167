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
}

type rateLimit struct {
	key   string
	limit redis_rate.Limit
}

// NewRateLimiter limits sends to global messages/s over all relays and
// perRelay messages/s to the relay named relay (its address).
func NewRateLimiter(rdb redis.UniversalClient, global, perRelay int, relay string) *RateLimiter {
	r := &RateLimiter{limiter: redis_rate.NewLimiter(rdb)}
	if perRelay > 0 {
		r.limits = append(r.limits, rateLimit{key: "snd:rate:relay:" + relay, limit: redis_rate.PerSecond(perRelay)})
	}
	if global > 0 {
		r.limits = append(r.limits, rateLimit{key: "snd:rate:global", limit: redis_rate.PerSecond(global)})
	}
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
			return max(res.RetryAfter, time.Millisecond), nil
		}
	}
	return 0, nil
}
