package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// List implements subscription.Store. With a topic it ranges the topic
// index, else the state index (or all).
func (s *Store) List(ctx context.Context, state subscription.State, topic, afterID string, limit int) ([]subscription.Subscriber, error) {
	key := idxAll
	switch {
	case topic != "":
		key = topicKey(topic)
	case state != subscription.StateUnspecified:
		key = idxKey(state)
	}
	return s.rangeRecords(ctx, key, afterID, limit, readWhole, func(sub subscription.Subscriber) bool {
		return (state == subscription.StateUnspecified || sub.State == state) &&
			(topic == "" || contains(sub.Preferences.Topics, topic))
	})
}

// ListSlot implements subscription.Store. It reads only the fields a due
// subscriber needs (HMGET), not the whole record with its consent
// evidence: the digest lists every due subscriber of a slot.
func (s *Store) ListSlot(ctx context.Context, slot subscription.Slot, afterID string, limit int) ([]subscription.Subscriber, error) {
	return s.rangeRecords(ctx, slotKey(slot), afterID, limit, readDue, func(sub subscription.Subscriber) bool {
		return sub.State == subscription.StateActive && subscription.SlotOf(sub.Preferences) == slot
	})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// recordRead is how rangeRecords reads a record: queue queues the read of
// record id in a pipeline, decode decodes its reply once the pipeline has
// run (ErrNotFound for a record that is gone).
type recordRead struct {
	queue  func(ctx context.Context, p redis.Pipeliner, id string) redis.Cmder
	decode func(id string, cmd redis.Cmder) (subscription.Subscriber, error)
}

// readWhole reads the whole record.
var readWhole = recordRead{
	queue: func(ctx context.Context, p redis.Pipeliner, id string) redis.Cmder {
		return p.HGetAll(ctx, recKey(id))
	},
	decode: func(id string, cmd redis.Cmder) (subscription.Subscriber, error) {
		sub, _, err := decodeRecord(id, cmd.(*redis.MapStringStringCmd).Val())
		return sub, err
	},
}

// readDue reads the fields of a due subscriber (decodeDue).
var readDue = recordRead{
	queue: func(ctx context.Context, p redis.Pipeliner, id string) redis.Cmder {
		return p.HMGet(ctx, recKey(id), dueFields[:]...)
	},
	decode: func(id string, cmd redis.Cmder) (subscription.Subscriber, error) {
		return decodeDue(id, cmd.(*redis.SliceCmd).Val())
	},
}

// rangeRecords pages through the lex-ordered id index key, reading the
// records in one pipeline per batch and keeping those for which keep is
// true.
//
// The index is read before the records, so a record that left the index (or
// was removed) in between is skipped rather than listed wrongly. It then
// reads on from where it stopped, so that fewer than limit records only
// ever means the index has no more: callers page on that.
func (s *Store) rangeRecords(ctx context.Context, key, afterID string, limit int, read recordRead, keep func(subscription.Subscriber) bool) ([]subscription.Subscriber, error) {
	var subs []subscription.Subscriber
	for len(subs) < limit {
		want := limit - len(subs)
		start := "-"
		if afterID != "" {
			start = "(" + afterID
		}
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: start, Stop: "+", ByLex: true, Count: int64(want)}).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: list %s: %w", key, err)
		}
		if len(ids) == 0 {
			break
		}
		if subs == nil {
			subs = make([]subscription.Subscriber, 0, len(ids))
		}
		cmds := make([]redis.Cmder, len(ids))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = read.queue(ctx, p, id)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("redisstore: list %s: %w", key, err)
		}
		for i, cmd := range cmds {
			sub, err := read.decode(ids[i], cmd)
			if errors.Is(err, subscription.ErrNotFound) {
				continue // removed between the range and the read
			}
			if err != nil {
				return nil, fmt.Errorf("redisstore: list %s: %w", key, err)
			}
			if keep(sub) {
				subs = append(subs, sub)
			}
		}
		if len(ids) < want {
			break
		}
		afterID = ids[len(ids)-1]
	}
	return subs, nil
}

// Timezones implements subscription.Store.
func (s *Store) Timezones(ctx context.Context) ([]string, error) {
	zs, err := s.rdb.ZRange(ctx, tzsKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: time zones: %w", err)
	}
	return zs, nil
}

// PendingBefore implements subscription.Store.
func (s *Store) PendingBefore(ctx context.Context, t time.Time, limit int) ([]string, error) {
	return s.before(ctx, pendingKey, t, limit)
}

// WithClientDataBefore implements subscription.Store. afterID is ignored:
// records leave the index once their data is dropped.
func (s *Store) WithClientDataBefore(ctx context.Context, t time.Time, _ string, limit int) ([]string, error) {
	return s.before(ctx, clientDataKey, t, limit)
}

func (s *Store) before(ctx context.Context, key string, t time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: key, Start: "-inf", Stop: "(" + strconv.FormatInt(t.Unix(), 10), ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: range %s: %w", key, err)
	}
	return ids, nil
}
