package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
)

// The never-resend memory, one key per subscriber (so nothing spans
// slots):
//
//	dig:sent:<subscriber id>  ZSET  member "<edition>|<id>,<id>,…"
//	                                score  unix seconds when recorded
//
// A key lives as long as its newest entry is kept; older entries are
// trimmed whenever one is added.
func sentKey(sub string) string { return "dig:sent:" + sub }

var _ digest.SentStore = (*Store)(nil)

// SentPapers implements digest.SentStore with one pipelined round trip.
func (s *Store) SentPapers(ctx context.Context, subs []string, except map[string]string, since time.Time) (map[string]map[string]bool, error) {
	out := make(map[string]map[string]bool, len(subs))
	if len(subs) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringSliceCmd, len(subs))
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, sub := range subs {
			cmds[i] = pipe.ZRangeByScore(ctx, sentKey(sub), &redis.ZRangeBy{
				Min: strconv.FormatInt(since.Unix(), 10), Max: "+inf",
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: sent papers of %d subscribers: %w", len(subs), err)
	}
	for i, sub := range subs {
		for _, m := range cmds[i].Val() {
			edition, ids, ok := strings.Cut(m, "|")
			if !ok || edition == except[sub] || ids == "" {
				continue
			}
			set := out[sub]
			if set == nil {
				set = map[string]bool{}
				out[sub] = set
			}
			for _, id := range strings.Split(ids, ",") {
				set[id] = true
			}
		}
	}
	return out, nil
}

// RecordSent implements digest.SentStore with one pipelined round trip.
func (s *Store) RecordSent(ctx context.Context, recs []digest.SentRecord, at time.Time, keep time.Duration) error {
	if len(recs) == 0 {
		return nil
	}
	oldest := strconv.FormatInt(at.Add(-keep).Unix(), 10)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, r := range recs {
			key := sentKey(r.SubscriberID)
			pipe.ZAdd(ctx, key, redis.Z{Score: float64(at.Unix()), Member: r.Edition + "|" + strings.Join(r.PaperIDs, ",")})
			pipe.ZRemRangeByScore(ctx, key, "-inf", "("+oldest)
			pipe.Expire(ctx, key, keep)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: record sent papers of %d subscribers: %w", len(recs), err)
	}
	return nil
}
