package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/poller"
)

// keyPollerLease elects the one source poller among replicas.
const keyPollerLease = "dig:poller:lease"

var _ poller.Lease = (*Store)(nil)

// acquireLease sets the lease to the holder if it is free or already the
// holder's, for ttl milliseconds; 1 if the holder has it now.
var acquireLease = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// releaseLease deletes the lease if the holder has it.
var releaseLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// AcquireLease implements poller.Lease.
func (s *Store) AcquireLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	ms := max(ttl.Milliseconds(), 1)
	n, err := acquireLease.Run(ctx, s.rdb, []string{keyPollerLease}, holder, ms).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: acquire poller lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseLease implements poller.Lease.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	if err := releaseLease.Run(ctx, s.rdb, []string{keyPollerLease}, holder).Err(); err != nil {
		return fmt.Errorf("redisstore: release poller lease: %w", err)
	}
	return nil
}
