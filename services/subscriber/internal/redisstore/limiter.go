package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Limiter is the subscription.Limiter on Redis: GCRA buckets of
// github.com/go-redis/redis_rate, shared by every replica. Bucket keys are
// "rate:sub:rl:<name>:<HMAC of the key>" (redis_rate adds "rate:"), so no
// address or IP is stored in clear; each is one key, so Cluster puts them
// anywhere.
type Limiter struct {
	rl      *redis_rate.Limiter
	hashKey []byte
}

var _ subscription.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter on rdb; hashKey keys the HMAC of bucket keys.
func NewLimiter(rdb redis.UniversalClient, hashKey []byte) *Limiter {
	return &Limiter{rl: redis_rate.NewLimiter(rdb), hashKey: append([]byte(nil), hashKey...)}
}

// Allow implements subscription.Limiter.
func (l *Limiter) Allow(ctx context.Context, name, key string, limit subscription.Limit) (time.Duration, error) {
	h := hmac.New(sha256.New, l.hashKey)
	h.Write([]byte(key))
	k := "sub:rl:" + name + ":" + hex.EncodeToString(h.Sum(nil))[:32]
	burst := limit.Burst
	if burst <= 0 {
		burst = limit.Rate
	}
	res, err := l.rl.Allow(ctx, k, redis_rate.Limit{Rate: limit.Rate, Burst: burst, Period: limit.Period})
	if err != nil {
		return 0, fmt.Errorf("redisstore: rate limit %s: %w", name, err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}
