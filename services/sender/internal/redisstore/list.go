package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

type candidate struct {
	ms int64
	id string
}

// newer orders candidates newest first (ties by id, descending).
func newer(a, b candidate) int {
	if c := cmp.Compare(b.ms, a.ms); c != 0 {
		return c
	}
	return strings.Compare(b.id, a.id)
}

// ListMessages implements queue.Store from the per-partition index: the
// newest `scan` candidates after the cursor across the partitions (within
// the filter's creation-time range, which the index serves directly), their
// records loaded in one pipeline, filtered. Index entries whose record has
// expired (the retention) are removed on the way.
func (s *Store) ListMessages(ctx context.Context, f queue.ListFilter, after *queue.ListCursor, limit, scan int) ([]queue.Message, *queue.ListCursor, error) {
	maxMs := f.CreatedBeforeMs()
	if after != nil {
		maxMs = min(maxMs, after.CreatedMs)
	}
	maxScore, minScore := "+inf", "-inf"
	if maxMs != math.MaxInt64 {
		maxScore = strconv.FormatInt(maxMs, 10)
	}
	if !f.CreatedAfter.IsZero() {
		minScore = strconv.FormatInt(f.CreatedAfterMs(), 10)
	}
	ranges := make([]*redis.ZSliceCmd, s.partitions)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part := range s.partitions {
			ranges[part] = p.ZRevRangeByScoreWithScores(ctx, IndexKey(part), &redis.ZRangeBy{Max: maxScore, Min: minScore, Count: int64(scan) + 1})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: list messages: %w", err)
	}
	var cands []candidate
	more := false
	for _, r := range ranges {
		zs := r.Val()
		if len(zs) > scan {
			more = true
		}
		for _, z := range zs {
			c := candidate{ms: int64(z.Score), id: fmt.Sprint(z.Member)}
			if after != nil && newer(candidate{after.CreatedMs, after.ID}, c) >= 0 {
				continue // not after the cursor
			}
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, newer)
	if len(cands) > scan {
		cands, more = cands[:scan], true
	}
	recs := make([]*redis.MapStringStringCmd, len(cands))
	marks := make([]*redis.StringCmd, len(cands))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range cands {
			part := queue.Partition(c.id, s.partitions)
			recs[i] = p.HGetAll(ctx, RecordKey(part, c.id))
			marks[i] = p.Get(ctx, MarkKey(part, c.id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("redisstore: list messages: %w", err)
	}
	var out []queue.Message
	var gone []candidate
	var last *candidate
	for i, c := range cands {
		if len(out) == limit {
			more = true
			break
		}
		last = &cands[i]
		vals := recs[i].Val()
		if len(vals) == 0 {
			gone = append(gone, c)
			continue
		}
		m, err := decodeRecord(c.id, vals)
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: list messages: %s: %w", c.id, err)
		}
		if !m.State.Done() && strings.HasPrefix(marks[i].Val(), "sending:") {
			m.State = queue.StateSending
		}
		if f.Match(m) {
			out = append(out, m)
		}
	}
	if len(gone) > 0 {
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range gone {
				p.ZRem(ctx, IndexKey(queue.Partition(c.id, s.partitions)), c.id)
			}
			return nil
		})
	}
	if !more || last == nil {
		return out, nil, nil
	}
	return out, &queue.ListCursor{CreatedMs: last.ms, ID: last.id}, nil
}

// RetryDeadLetters implements queue.Store: the oldest dead messages first,
// each queued again by one script in its partition's slot.
func (s *Store) RetryDeadLetters(ctx context.Context, lane queue.Lane, limit int, at time.Time) (int, error) {
	total := 0
	for part := range s.partitions {
		skip := int64(0) // dead letters of the other lane, left in place
		for total < limit {
			ids, err := s.rdb.ZRange(ctx, DeadKey(part), skip, skip+int64(min(limit-total, 500))-1).Result()
			if err != nil {
				return total, fmt.Errorf("redisstore: retry dead letters: %w", err)
			}
			if len(ids) == 0 {
				break
			}
			for _, id := range ids {
				l, err := s.rdb.HGet(ctx, RecordKey(part, id), "lane").Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					return total, fmt.Errorf("redisstore: retry dead letter %s: %w", id, err)
				}
				msgLane, ok := queue.ParseLane(l)
				if !ok {
					_ = s.rdb.ZRem(ctx, DeadKey(part), id).Err() // the record expired
					continue
				}
				if lane != 0 && msgLane != lane {
					skip++
					continue
				}
				keys := []string{RecordKey(part, id), StreamKey(msgLane, part), DeadKey(part), MarkKey(part, id)}
				n, err := retryDeadScript.Run(ctx, s.rdb, keys, id, at.UnixMilli()).Int()
				if err != nil {
					return total, fmt.Errorf("redisstore: retry dead letter %s: %w", id, err)
				}
				total += n
			}
		}
	}
	return total, nil
}
