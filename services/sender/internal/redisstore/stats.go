package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Stats implements queue.Store: waiting is the group's lag (Redis >= 7),
// pending its pending count, retrying the delayed set, sent, dead and
// cancelled the counters, each summed over the partitions; the oldest age
// is that of the oldest pending entry, or else the oldest waiting one; the
// rates come from the counters' samples (rates.go), read in the same
// pipeline.
func (s *Store) Stats(ctx context.Context) ([]queue.LaneStats, error) {
	type streamCmds struct {
		lane    queue.Lane
		key     string
		groups  *redis.XInfoGroupsCmd
		length  *redis.IntCmd
		pending *redis.XPendingCmd
		delayed *redis.IntCmd
	}
	var streams []*streamCmds
	counters := make([]*redis.MapStringStringCmd, s.partitions)
	var samples sampleCmds
	now := time.Now()
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		samples = s.readSamples(ctx, p, now)
		for part := range s.partitions {
			for _, lane := range queue.Lanes() {
				key := StreamKey(lane, part)
				streams = append(streams, &streamCmds{
					lane: lane, key: key, groups: p.XInfoGroups(ctx, key), length: p.XLen(ctx, key),
					pending: p.XPending(ctx, key, Group), delayed: p.ZCard(ctx, DelayKey(lane, part)),
				})
			}
			counters[part] = p.HGetAll(ctx, StatsKey(part))
		}
		return nil
	})
	out := make([]queue.LaneStats, 0, 2)
	for _, lane := range queue.Lanes() {
		out = append(out, queue.LaneStats{Lane: lane})
	}
	byLane := map[queue.Lane]*queue.LaneStats{}
	for i := range out {
		byLane[out[i].Lane] = &out[i]
	}
	for _, sc := range streams {
		st := byLane[sc.lane]
		st.Retrying += sc.delayed.Val()
		groups, err := sc.groups.Result()
		if err != nil {
			if redis.HasErrorPrefix(err, "ERR no such key") {
				continue // the stream does not exist yet: nothing queued
			}
			return nil, fmt.Errorf("redisstore: stats: %w", err)
		}
		for _, g := range groups {
			if g.Name != Group {
				continue
			}
			lag := g.Lag
			if lag < 0 { // Redis cannot tell (entries were deleted): estimate
				lag = max(0, sc.length.Val()-g.EntriesRead)
			}
			st.Waiting += lag
			st.Pending += g.Pending
			oldest := ""
			if p, err := sc.pending.Result(); err == nil && p.Count > 0 {
				oldest = p.Lower
			} else if lag > 0 {
				next, err := s.rdb.XRangeN(ctx, sc.key, "("+g.LastDeliveredID, "+", 1).Result()
				if err == nil && len(next) > 0 {
					oldest = next[0].ID
				}
			}
			if age := idAge(oldest, now); age > st.OldestAge {
				st.OldestAge = age
			}
		}
	}
	current := make([]map[string]string, len(counters))
	for part, c := range counters {
		vals, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redisstore: stats of partition %d: %w", part, err)
		}
		current[part] = vals
		for _, lane := range queue.Lanes() {
			st := byLane[lane]
			st.Sent += counter(vals, lane, "sent")
			st.Dead += counter(vals, lane, "dead")
			st.Cancelled += counter(vals, lane, "cancelled")
		}
	}
	if err := addRates(out, samples, current, now); err != nil {
		return nil, err
	}
	return out, nil
}

func counter(vals map[string]string, lane queue.Lane, name string) int64 {
	n, _ := strconv.ParseInt(vals[lane.String()+":"+name], 10, 64)
	return n
}

// idAge is the age of a stream entry id (its milliseconds part).
func idAge(id string, now time.Time) time.Duration {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0
	}
	return max(0, now.Sub(time.UnixMilli(n)))
}

// CancelRecipient implements queue.Store.
func (s *Store) CancelRecipient(ctx context.Context, rcpt string, allLanes bool, at time.Time) error {
	field := "bulk"
	if allLanes {
		field = "all"
	}
	key := CancelKey(rcpt)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, field, at.UnixMilli())
		p.Expire(ctx, key, CancelTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: cancel recipient: %w", err)
	}
	return nil
}

// cancelledSince reads the answer to HMGET <cancel key> all bulk: when
// mail of lane was last cancelled (zero: never). Transactional mail is
// cancelled by an all-lanes cancel only, bulk mail by either.
func cancelledSince(vals []any, lane queue.Lane) time.Time {
	var since int64
	for i, v := range vals {
		if i == 1 && lane != queue.LaneBulk {
			break
		}
		if str, ok := v.(string); ok {
			n, _ := strconv.ParseInt(str, 10, 64)
			since = max(since, n)
		}
	}
	if since == 0 {
		return time.Time{}
	}
	return time.UnixMilli(since)
}

// SetPause implements queue.Store.
func (s *Store) SetPause(ctx context.Context, p queue.Pause) (queue.Pause, error) {
	if !p.Paused {
		if err := s.rdb.Del(ctx, PauseKey).Err(); err != nil {
			return queue.Pause{}, fmt.Errorf("redisstore: resume: %w", err)
		}
		return queue.Pause{}, nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HSetNX(ctx, PauseKey, "since", p.Since.UnixMilli())
		pl.HSet(ctx, PauseKey, "reason", p.Reason)
		return nil
	})
	if err != nil {
		return queue.Pause{}, fmt.Errorf("redisstore: pause: %w", err)
	}
	return s.GetPause(ctx)
}

// GetPause implements queue.Store and delivery.Queue.
func (s *Store) GetPause(ctx context.Context) (queue.Pause, error) {
	vals, err := s.rdb.HGetAll(ctx, PauseKey).Result()
	if err != nil {
		return queue.Pause{}, fmt.Errorf("redisstore: get pause: %w", err)
	}
	if len(vals) == 0 {
		return queue.Pause{}, nil
	}
	return queue.Pause{Paused: true, Reason: vals["reason"], Since: unixMilli(vals["since"])}, nil
}
