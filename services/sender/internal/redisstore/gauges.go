package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DeadLetters returns how many messages the dead sets hold now (what
// RetryDeadLetters can queue again): one ZCARD per partition, pipelined, so
// it is cheap enough for every metrics scrape.
func (s *Store) DeadLetters(ctx context.Context) (int64, error) {
	cmds := make([]*redis.IntCmd, s.partitions)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part := range s.partitions {
			cmds[part] = p.ZCard(ctx, DeadKey(part))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redisstore: count dead letters: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
