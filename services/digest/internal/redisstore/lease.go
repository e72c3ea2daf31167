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

// releasePollerLease deletes the lease if the holder has it.
var releasePollerLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// AcquirePollerLease implements poller.Lease.
func (s *Store) AcquirePollerLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	ms := max(ttl.Milliseconds(), 1)
	// The script is the scheduler lease's (scheduler.go), on another key.
	n, err := acquireLease.Run(ctx, s.rdb, []string{keyPollerLease}, holder, ms).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: acquire poller lease: %w", err)
	}
	return n == 1, nil
}

// ReleasePollerLease implements poller.Lease.
func (s *Store) ReleasePollerLease(ctx context.Context, holder string) error {
	if err := releasePollerLease.Run(ctx, s.rdb, []string{keyPollerLease}, holder).Err(); err != nil {
		return fmt.Errorf("redisstore: release poller lease: %w", err)
	}
	return nil
}
