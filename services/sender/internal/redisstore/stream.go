package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Read implements delivery.Queue: one XREADGROUP over both streams of the
// partition (they share a slot), transactional entries first. COUNT applies
// to each stream, so up to 2*count entries can come back.
func (s *Store) Read(ctx context.Context, p int, consumer string, count int, block time.Duration) ([]delivery.Entry, error) {
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    Group,
		Consumer: consumer,
		Streams:  []string{StreamKey(queue.LaneTransactional, p), StreamKey(queue.LaneBulk, p), ">", ">"},
		Count:    int64(count),
		Block:    block,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, s.streamError(ctx, p, "read", err)
	}
	var out []delivery.Entry
	for _, lane := range queue.Lanes() {
		for _, st := range streams {
			if st.Stream != StreamKey(lane, p) {
				continue
			}
			for _, m := range st.Messages {
				out = append(out, entry(p, lane, m))
			}
		}
	}
	return out, nil
}

// Claim implements delivery.Queue with XAUTOCLAIM.
func (s *Store) Claim(ctx context.Context, p int, lane queue.Lane, consumer string, minIdle time.Duration, cursor string, count int) ([]delivery.Entry, string, error) {
	msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   StreamKey(lane, p),
		Group:    Group,
		Consumer: consumer,
		MinIdle:  minIdle,
		Start:    cursor,
		Count:    int64(count),
	}).Result()
	if err != nil {
		return nil, cursor, s.streamError(ctx, p, "claim", err)
	}
	out := make([]delivery.Entry, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, entry(p, lane, m))
	}
	return out, next, nil
}

// streamError recreates the consumer groups of a partition when Redis lost
// them (NOGROUP: e.g. restarted without persistence) and wraps err.
func (s *Store) streamError(ctx context.Context, p int, op string, err error) error {
	if redis.HasErrorPrefix(err, "NOGROUP") {
		if gerr := s.ensurePartitionGroups(ctx, p); gerr != nil {
			return fmt.Errorf("redisstore: %s partition %d: %w (recreating groups: %v)", op, p, err, gerr)
		}
	}
	return fmt.Errorf("redisstore: %s partition %d: %w", op, p, err)
}

func entry(p int, lane queue.Lane, m redis.XMessage) delivery.Entry {
	e := delivery.Entry{Partition: p, Lane: lane, StreamID: m.ID}
	if id, ok := m.Values["id"].(string); ok && queue.ValidMessageID(id) {
		e.MessageID = id
	}
	return e
}

// Extend implements delivery.Queue: one script run per stream.
func (s *Store) Extend(ctx context.Context, consumer string, entries []delivery.Entry) error {
	byStream := map[string][]any{}
	for _, e := range entries {
		key := StreamKey(e.Lane, e.Partition)
		if byStream[key] == nil {
			byStream[key] = []any{Group, consumer}
		}
		byStream[key] = append(byStream[key], e.StreamID)
	}
	for key, args := range byStream {
		if err := extendScript.Run(ctx, s.rdb, []string{key}, args...).Err(); err != nil {
			return fmt.Errorf("redisstore: extend entries of %s: %w", key, err)
		}
	}
	return nil
}

// StartAttempt implements delivery.Queue.
func (s *Store) StartAttempt(ctx context.Context, e delivery.Entry, at time.Time) (int, error) {
	n, err := startAttemptScript.Run(ctx, s.rdb, []string{RecordKey(e.Partition, e.MessageID)}, at.UnixMilli()).Int()
	switch {
	case err != nil:
		return 0, fmt.Errorf("redisstore: start attempt %s: %w", e.MessageID, err)
	case n < 0:
		return 0, fmt.Errorf("redisstore: start attempt %s: %w", e.MessageID, queue.ErrNotFound)
	}
	return n, nil
}

// MarkSent implements delivery.Queue.
func (s *Store) MarkSent(ctx context.Context, e delivery.Entry, at time.Time) error {
	return s.finish(ctx, e, queue.StateSent, "", at)
}

// MarkDead implements delivery.Queue.
func (s *Store) MarkDead(ctx context.Context, e delivery.Entry, reason string, at time.Time) error {
	return s.finish(ctx, e, queue.StateDead, reason, at)
}

func (s *Store) finish(ctx context.Context, e delivery.Entry, state queue.State, reason string, at time.Time) error {
	counter := e.Lane.String() + ":sent"
	if state == queue.StateDead {
		counter = e.Lane.String() + ":dead"
	}
	keys := []string{RecordKey(e.Partition, e.MessageID), StreamKey(e.Lane, e.Partition), StatsKey(e.Partition)}
	err := finishScript.Run(ctx, s.rdb, keys,
		Group, e.StreamID, state.String(), counter, at.UnixMilli(), int64(RecordTTL/time.Second), reason).Err()
	if err != nil {
		return fmt.Errorf("redisstore: mark %s %s: %w", e.MessageID, state, err)
	}
	return nil
}

// Retry implements delivery.Queue.
func (s *Store) Retry(ctx context.Context, e delivery.Entry, consumer, reason string, at time.Time) error {
	keys := []string{RecordKey(e.Partition, e.MessageID), StreamKey(e.Lane, e.Partition)}
	if err := retryScript.Run(ctx, s.rdb, keys, Group, consumer, e.StreamID, reason, at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redisstore: retry %s: %w", e.MessageID, err)
	}
	return nil
}

// Ack implements delivery.Queue.
func (s *Store) Ack(ctx context.Context, e delivery.Entry) error {
	if err := s.rdb.XAck(ctx, StreamKey(e.Lane, e.Partition), Group, e.StreamID).Err(); err != nil {
		return fmt.Errorf("redisstore: ack %s %s: %w", StreamKey(e.Lane, e.Partition), e.StreamID, err)
	}
	return nil
}
