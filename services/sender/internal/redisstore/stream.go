package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// Lease implements delivery.Queue: the lease script, run together with the
// leases other workers ask for at the same moment in the same partition
// (pipeBatch), and in the same pipeline, after it, the read of the
// recipient's cancel times (another hash slot, so not in the script; on a
// Cluster go-redis sends each command to its node).
func (s *Store) Lease(ctx context.Context, e delivery.Entry, r delivery.LeaseRequest) (delivery.Lease, error) {
	c, answer := s.leaseCall(ctx, e, r)
	_, err := s.pipes.call(ctx, s.rdb, c)
	return answer(err)
}

// MarkSentAndLease implements delivery.Queue: the finish and lease scripts
// (and the cancel read) in one pipeline.
func (s *Store) MarkSentAndLease(ctx context.Context, e delivery.Entry, reply string, at time.Time, next delivery.Entry, r delivery.LeaseRequest) delivery.SentAndLease {
	fin := s.finishCall(e, queue.StateSent, "", "", reply, false, false, at)
	c, answer := s.leaseCall(ctx, next, r)
	s.pipes.callAll(ctx, s.rdb, fin, c)
	var out delivery.SentAndLease
	if fin.err != nil {
		out.SentErr = fmt.Errorf("redisstore: mark %s %s: %w", e.MessageID, queue.StateSent, fin.err)
	}
	out.Lease, out.LeaseErr = answer(c.err)
	return out
}

// leaseCall returns one call of the lease script, with the recipient's
// cancel read after it when r names one, and the function that makes its
// answer once the call was sent (with the call's error).
func (s *Store) leaseCall(ctx context.Context, e delivery.Entry, r delivery.LeaseRequest) (*scriptCall, func(error) (delivery.Lease, error)) {
	var cancel *redis.SliceCmd
	c := &scriptCall{
		script: leaseScript,
		slot:   strconv.Itoa(e.Partition),
		keys:   []string{MarkKey(e.Partition, e.MessageID), RecordKey(e.Partition, e.MessageID)},
		args:   []any{r.Consumer, r.Duration.Milliseconds(), r.At.UnixMilli()},
	}
	if r.Recipient != "" {
		c.after = func(p redis.Pipeliner) { cancel = p.HMGet(ctx, CancelKey(r.Recipient), "all", "bulk") }
	}
	return c, func(err error) (delivery.Lease, error) {
		if err != nil {
			return delivery.Lease{}, fmt.Errorf("redisstore: lease %s: %w", e.MessageID, err)
		}
		l, err := parseLease(e, c.res)
		if err != nil || cancel == nil {
			return l, err
		}
		if err := cancel.Err(); err != nil {
			// On a Cluster the script may have run on its node while the
			// cancels' node failed: the lease goes back with the error.
			return l, fmt.Errorf("redisstore: lease %s: read cancels: %w", e.MessageID, err)
		}
		l.CancelledSince = cancelledSince(cancel.Val(), e.Lane)
		return l, nil
	}
}

func parseLease(e delivery.Entry, answer []any) (delivery.Lease, error) {
	res := make([]string, len(answer))
	for i, v := range answer {
		res[i], _ = v.(string)
	}
	switch {
	case len(res) == 3 && res[0] == "sent":
		return delivery.Lease{Result: delivery.LeaseSent}, nil
	case len(res) == 3 && res[0] == "held":
		return delivery.Lease{Result: delivery.LeaseHeld}, nil
	case len(res) == 3 && res[0] == "missing":
		return delivery.Lease{}, fmt.Errorf("redisstore: lease %s: %w", e.MessageID, queue.ErrNotFound)
	case len(res) == 3 && res[0] == "ok":
		n, err := strconv.Atoi(res[2])
		if err != nil {
			return delivery.Lease{}, fmt.Errorf("redisstore: lease %s: attempt count %q", e.MessageID, res[2])
		}
		return delivery.Lease{Result: delivery.LeaseAcquired, Token: res[1], Attempts: n}, nil
	}
	return delivery.Lease{}, fmt.Errorf("redisstore: lease %s: unexpected answer %q", e.MessageID, res)
}

// RenewLease implements delivery.Queue.
func (s *Store) RenewLease(ctx context.Context, e delivery.Entry, token string, d time.Duration) (bool, error) {
	keys := []string{MarkKey(e.Partition, e.MessageID), RecordKey(e.Partition, e.MessageID)}
	n, err := renewScript.Run(ctx, s.rdb, keys, token, d.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: renew lease %s: %w", e.MessageID, err)
	}
	return n == 1, nil
}

// MarkSent implements delivery.Queue.
func (s *Store) MarkSent(ctx context.Context, e delivery.Entry, reply string, at time.Time) error {
	return s.finish(ctx, e, queue.StateSent, "", "", reply, false, false, at)
}

// MarkDead implements delivery.Queue.
func (s *Store) MarkDead(ctx context.Context, e delivery.Entry, token, reason string, report bool, at time.Time) error {
	return s.finish(ctx, e, queue.StateDead, token, reason, "", report, false, at)
}

// MarkCancelled implements delivery.Queue.
func (s *Store) MarkCancelled(ctx context.Context, e delivery.Entry, token string, at time.Time) error {
	return s.finish(ctx, e, queue.StateCancelled, token, "cancelled: the recipient unsubscribed or was suppressed after it was queued", "", false, token != "", at)
}

// finish runs the finish script, together with the finishes other workers
// ask for at the same moment in the same partition (pipeBatch).
func (s *Store) finish(ctx context.Context, e delivery.Entry, state queue.State, token, reason, reply string, report, refund bool, at time.Time) error {
	_, err := s.pipes.call(ctx, s.rdb, s.finishCall(e, state, token, reason, reply, report, refund, at))
	if err != nil {
		return fmt.Errorf("redisstore: mark %s %s: %w", e.MessageID, state, err)
	}
	return nil
}

// finishCall is one call of the finish script.
func (s *Store) finishCall(e delivery.Entry, state queue.State, token, reason, reply string, report, refund bool, at time.Time) *scriptCall {
	rep, ref := "0", "0"
	if report {
		rep = "1"
	}
	if refund {
		ref = "1"
	}
	p := e.Partition
	return &scriptCall{
		script:     finishScript,
		slot:       strconv.Itoa(p),
		sharedKeys: []string{StatsKey(p), DeadKey(p), OutboxKey(p)},
		sharedArgs: []any{Group, int64(s.retention / time.Second), int64(SentMarkTTL / time.Second)},
		keys:       []string{RecordKey(p, e.MessageID), MarkKey(p, e.MessageID), StreamKey(e.Lane, p), DelayKey(e.Lane, p)},
		args: []any{
			e.StreamID, state.String(), e.Lane.String() + ":" + strings.ToLower(state.String()), at.UnixMilli(),
			reason, token, rep, reply, e.MessageID, ref,
		},
	}
}

// Retry implements delivery.Queue.
func (s *Store) Retry(ctx context.Context, e delivery.Entry, token string, r delivery.Retry, at time.Time) error {
	keys := []string{RecordKey(e.Partition, e.MessageID), StreamKey(e.Lane, e.Partition), DelayKey(e.Lane, e.Partition), MarkKey(e.Partition, e.MessageID)}
	refund := "0"
	if r.Refund {
		refund = "1"
	}
	err := retryScript.Run(ctx, s.rdb, keys, Group, e.StreamID, r.State.String(), r.Reason, at.UnixMilli(),
		r.Due.UnixMilli(), refund, token, e.MessageID).Err()
	if err != nil {
		return fmt.Errorf("redisstore: retry %s: %w", e.MessageID, err)
	}
	return nil
}

// PromoteDue implements delivery.Queue.
func (s *Store) PromoteDue(ctx context.Context, p int, now time.Time, limit int) (int, error) {
	total := 0
	for _, lane := range queue.Lanes() {
		n, err := promoteScript.Run(ctx, s.rdb, []string{DelayKey(lane, p), StreamKey(lane, p)}, now.UnixMilli(), limit).Int()
		if err != nil {
			return total, fmt.Errorf("redisstore: promote due retries of %s: %w", DelayKey(lane, p), err)
		}
		total += n
	}
	return total, nil
}

// DeadLetterMissing implements delivery.Queue.
func (s *Store) DeadLetterMissing(ctx context.Context, e delivery.Entry, reason string, at time.Time) error {
	stream := StreamKey(e.Lane, e.Partition)
	err := deadLetterScript.Run(ctx, s.rdb, []string{stream, DeadLetterKey(e.Partition)},
		Group, e.StreamID, e.MessageID, reason, at.UnixMilli(), stream).Err()
	if err != nil {
		return fmt.Errorf("redisstore: dead-letter entry %s of %s: %w", e.StreamID, stream, err)
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

// Maintain implements delivery.Queue: per stream, XTRIM MINID to the oldest
// entry not yet acknowledged (the oldest pending one, else the group's last
// delivered id: everything below is acknowledged), then the stale
// consumers.
func (s *Store) Maintain(ctx context.Context, p int, self string, staleAfter time.Duration) error {
	for _, lane := range queue.Lanes() {
		key := StreamKey(lane, p)
		groups, err := s.rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("redisstore: maintain %s: %w", key, err)
		}
		last := ""
		for _, g := range groups {
			if g.Name == Group {
				last = g.LastDeliveredID
			}
		}
		if last == "" || last == "0-0" {
			continue
		}
		pending, err := s.rdb.XPending(ctx, key, Group).Result()
		if err != nil {
			return fmt.Errorf("redisstore: maintain %s: %w", key, err)
		}
		floor := last
		if pending.Count > 0 {
			floor = pending.Lower
		}
		if err := s.rdb.XTrimMinID(ctx, key, floor).Err(); err != nil {
			return fmt.Errorf("redisstore: trim %s: %w", key, err)
		}
		if err := dropStaleConsumersScript.Run(ctx, s.rdb, []string{key}, Group, self, staleAfter.Milliseconds()).Err(); err != nil {
			return fmt.Errorf("redisstore: drop stale consumers of %s: %w", key, err)
		}
	}
	return nil
}

// PendingReports implements delivery.Outbox.
func (s *Store) PendingReports(ctx context.Context, p, limit int) ([]delivery.Report, error) {
	msgs, err := s.rdb.XRangeN(ctx, OutboxKey(p), "-", "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read outbox %d: %w", p, err)
	}
	out := make([]delivery.Report, 0, len(msgs))
	for _, m := range msgs {
		rcpt, _ := m.Values["rcpt"].(string)
		detail, _ := m.Values["detail"].(string)
		out = append(out, delivery.Report{ID: m.ID, Recipient: rcpt, Detail: detail})
	}
	return out, nil
}

// DeleteReports implements delivery.Outbox.
func (s *Store) DeleteReports(ctx context.Context, p int, ids []string) error {
	if err := s.rdb.XDel(ctx, OutboxKey(p), ids...).Err(); err != nil {
		return fmt.Errorf("redisstore: delete reports of outbox %d: %w", p, err)
	}
	return nil
}
