package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
)

// The scheduler's state (one key each):
//
//	dig:sched:lease   STRING  the owner id of the replica that schedules; PX ttl
//	dig:sched:cursor  STRING  unix seconds of the last slot whose run finished
const (
	keyLease  = "dig:sched:lease"
	keyCursor = "dig:sched:cursor"
)

var _ digest.SchedulerStore = (*Store)(nil)

// acquireLease sets the lease to ARGV[1] if it is free or already
// ARGV[1]'s, with a TTL of ARGV[2] ms.
var acquireLease = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// AcquireLease implements digest.SchedulerStore.
func (s *Store) AcquireLease(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	n, err := acquireLease.Run(ctx, s.rdb, []string{keyLease}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: scheduler lease: %w", err)
	}
	return n == 1, nil
}

// Cursor implements digest.SchedulerStore.
func (s *Store) Cursor(ctx context.Context) (time.Time, error) {
	n, err := s.rdb.Get(ctx, keyCursor).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("redisstore: scheduler cursor: %w", err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// setCursor moves the cursor forward only.
var setCursor = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`)

// SetCursor implements digest.SchedulerStore.
func (s *Store) SetCursor(ctx context.Context, slot time.Time) error {
	if err := setCursor.Run(ctx, s.rdb, []string{keyCursor}, slot.Unix()).Err(); err != nil {
		return fmt.Errorf("redisstore: set scheduler cursor: %w", err)
	}
	return nil
}
