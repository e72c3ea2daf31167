package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// StateCounts returns how many records are in each state: the ZCARD of
// each state index. The index is the counter: every change of a record's
// state moves its id between the indexes in the record's own MULTI (same
// {s} slot), so the counts cannot drift from the records and need no
// rebuild; reading them costs one round trip of four O(1) commands.
func (s *Store) StateCounts(ctx context.Context) (map[subscription.State]int64, error) {
	cmds := map[subscription.State]*redis.IntCmd{}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for st := subscription.StatePending; st.Valid(); st++ {
			cmds[st] = p.ZCard(ctx, idxKey(st))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: count subscribers by state: %w", err)
	}
	out := make(map[subscription.State]int64, len(cmds))
	for st, c := range cmds {
		out[st] = c.Val()
	}
	return out, nil
}
