// Package redisstore keeps sender's queue in Redis: content templates, one
// record per message, and per partition two streams (one per lane) read by
// the consumer group "senders".
//
// Keys (every key of a partition shares the hash tag {p}, so each script or
// transaction stays in one Redis Cluster slot):
//
//	snd:q:tx:{p}, snd:q:bulk:{p}   streams; each entry is just {id: <message id>}
//	snd:msg:{p}:<message id>       hash: the message record (fields: record.go)
//	snd:mark:{p}:<message id>      string: "sending:<consumer>:<lease n>" (PX lease) or "sent" (30 d)
//	snd:delay:tx:{p}, snd:delay:bulk:{p}  sorted sets: message ids waiting for a retry, by due time (ms)
//	snd:dead:{p}                   sorted set: dead message ids by time (RetryDeadLetters)
//	snd:idx:{p}                    sorted set: message ids by creation time (ListMessages; pruned lazily)
//	snd:outbox:{p}                 stream: delivery failures to report to the subscriber service
//	snd:dlq:{p}                    stream: entries whose message record was missing (an alarm)
//	snd:stats:{p}                  hash: counters "<lane>:sent", "<lane>:dead", "<lane>:cancelled"
//	snd:content:<content id>       hash: subject, html, text, vars (no hash tag; only single-key commands)
//	snd:cancel:<recipient>         hash: "bulk" / "all": when the recipient's mail was cancelled (ms)
//	snd:pause                      hash: the kill switch (reason, since)
//	snd:partitions                 string: the partition count the queue was created with
//
// Streams are trimmed below their oldest unacknowledged entry (Maintain):
// unsent work is never trimmed. Content expires 30 days after it was last
// stored or used by Enqueue; a record expires the retention (default 7
// days) after it became SENT, DEAD or CANCELLED; sent marks last 30 days.
// Records of unfinished messages never expire.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Group is the consumer group every sender replica reads with.
const Group = "senders"

// Expiry of content, finished records (the default retention), sent marks
// and recipient cancels.
const (
	ContentTTL  = 30 * 24 * time.Hour
	RecordTTL   = 7 * 24 * time.Hour
	SentMarkTTL = 30 * 24 * time.Hour
	CancelTTL   = 90 * 24 * time.Hour
)

// ErrPartitionsChanged is returned by EnsureGroups when the queue in Redis
// was created with another partition count.
var ErrPartitionsChanged = errors.New("redisstore: the partition count of an existing queue must not change")

// Store implements queue.Store and delivery.Queue on Redis.
type Store struct {
	rdb        redis.UniversalClient
	partitions int
	retention  time.Duration
	// pipes sends the lease and finish scripts of concurrent workers in
	// one pipeline.
	pipes *pipeBatch
}

var (
	_ queue.Store    = (*Store)(nil)
	_ delivery.Queue = (*Store)(nil)
)

// New returns a Store over rdb with the given number of partitions, which
// must never change for an existing queue.
func New(rdb redis.UniversalClient, partitions int) *Store {
	return &Store{rdb: rdb, partitions: max(1, partitions), retention: RecordTTL, pipes: &pipeBatch{}}
}

// WithRetention sets how long finished records are kept (default
// RecordTTL) and returns s.
func (s *Store) WithRetention(d time.Duration) *Store {
	if d > 0 {
		s.retention = d
	}
	return s
}

// Keys are built for every message on the delivery path: by concatenation
// (one allocation), not fmt.

// MarkKey is the delivery mark of a message.
func MarkKey(partition int, id string) string {
	return "snd:mark:{" + strconv.Itoa(partition) + "}:" + id
}

// DelayKey is the set of a lane's messages waiting for a retry.
func DelayKey(lane queue.Lane, partition int) string {
	return "snd:delay:" + lane.String() + ":{" + strconv.Itoa(partition) + "}"
}

// IndexKey is the set of a partition's message ids by creation time
// (ListMessages).
func IndexKey(partition int) string { return "snd:idx:{" + strconv.Itoa(partition) + "}" }

// DeadKey is the set of a partition's dead messages.
func DeadKey(partition int) string { return "snd:dead:{" + strconv.Itoa(partition) + "}" }

// OutboxKey is the stream of delivery failures to report.
func OutboxKey(partition int) string { return "snd:outbox:{" + strconv.Itoa(partition) + "}" }

// DeadLetterKey is the stream of entries without a message record.
func DeadLetterKey(partition int) string { return "snd:dlq:{" + strconv.Itoa(partition) + "}" }

// CancelKey holds when a recipient's mail was cancelled. The address is
// lower-cased: a cancel matches whatever case the mail was queued with.
func CancelKey(rcpt string) string { return "snd:cancel:" + strings.ToLower(rcpt) }

// PauseKey is the kill switch.
const PauseKey = "snd:pause"

// StreamKey is the stream of one lane in one partition.
func StreamKey(lane queue.Lane, partition int) string {
	return "snd:q:" + lane.String() + ":{" + strconv.Itoa(partition) + "}"
}

// RecordKey is the record of a message.
func RecordKey(partition int, id string) string {
	return "snd:msg:{" + strconv.Itoa(partition) + "}:" + id
}

// StatsKey is the counters hash of a partition.
func StatsKey(partition int) string { return "snd:stats:{" + strconv.Itoa(partition) + "}" }

// ContentKey is the key of a content template.
func ContentKey(id string) string { return "snd:content:" + id }

// PartitionsKey holds the partition count the queue was created with.
const PartitionsKey = "snd:partitions"

// EnsureGroups checks that the queue in Redis has this Store's partition
// count (recording it for a new queue) and creates the consumer group on
// every stream, creating the streams too. The group starts at id 0, so
// entries added before it existed are delivered as well. An existing group
// is left alone. A queue created with another partition count is
// ErrPartitionsChanged: records and entries are found by the count, so
// running with another one would strand or drop queued mail.
func (s *Store) EnsureGroups(ctx context.Context) error {
	if err := s.rdb.SetNX(ctx, PartitionsKey, s.partitions, 0).Err(); err != nil {
		return fmt.Errorf("redisstore: record the partition count: %w", err)
	}
	n, err := s.rdb.Get(ctx, PartitionsKey).Int()
	if err != nil {
		return fmt.Errorf("redisstore: read the partition count: %w", err)
	}
	if n != s.partitions {
		return fmt.Errorf("%w: the queue has %d partitions, not %d", ErrPartitionsChanged, n, s.partitions)
	}
	for p := range s.partitions {
		if err := s.ensurePartitionGroups(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ensurePartitionGroups(ctx context.Context, p int) error {
	for _, lane := range queue.Lanes() {
		key := StreamKey(lane, p)
		err := s.rdb.XGroupCreateMkStream(ctx, key, Group, "0").Err()
		if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			return fmt.Errorf("redisstore: create group on %s: %w", key, err)
		}
	}
	return nil
}

// PutContents implements queue.Store.
func (s *Store) PutContents(ctx context.Context, contents map[string]queue.Content) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, c := range contents {
			key := ContentKey(id)
			p.HSet(ctx, key, "subject", c.Subject, "html", c.HTML, "text", c.Text, "vars", strings.Join(c.Variables(), " "))
			p.Expire(ctx, key, ContentTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: put content: %w", err)
	}
	return nil
}

// ContentVariables implements queue.Store.
func (s *Store) ContentVariables(ctx context.Context, ids []string) (map[string][]string, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, ContentKey(id), "vars")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: content variables: %w", err)
	}
	out := make(map[string][]string, len(ids))
	for i, id := range ids {
		v, err := cmds[i].Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			return nil, fmt.Errorf("redisstore: content variables %s: %w", id, err)
		}
		out[id] = strings.Fields(v)
	}
	return out, nil
}

// TouchContents implements queue.Store.
func (s *Store) TouchContents(ctx context.Context, ids []string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Expire(ctx, ContentKey(id), ContentTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: touch content: %w", err)
	}
	return nil
}

// GetContent implements delivery.Queue.
func (s *Store) GetContent(ctx context.Context, id string) (queue.Content, error) {
	vals, err := s.rdb.HGetAll(ctx, ContentKey(id)).Result()
	if err != nil {
		return queue.Content{}, fmt.Errorf("redisstore: get content %s: %w", id, err)
	}
	if len(vals) == 0 {
		return queue.Content{}, fmt.Errorf("redisstore: get content %s: %w", id, queue.ErrNotFound)
	}
	return queue.Content{Subject: vals["subject"], HTML: vals["html"], Text: vals["text"]}, nil
}

// Enqueue implements queue.Store. The W3C traceparent of ctx's span (the
// Enqueue call's, when traced) is stored in each record (field tp), so the
// send joins the trace. The messages of each partition go to Redis as one
// script run (up to enqueueRunMax of them; all pipelined): for each
// message it creates the record and adds the stream entry only if the
// record does not exist, so neither a repeated key nor a retried command
// (go-redis retries on network errors) can queue a message twice. A
// per-call nonce stored in the record lets a retried script recognise its
// own earlier success and still report the message as created: a random
// number plus the message's index in the call, an integer so that the
// record's listpack stores it in 9 bytes.
func (s *Store) Enqueue(ctx context.Context, messages []queue.Message) ([]bool, error) {
	traceParent := traceParent(ctx)
	nonce := rand.Int64N(1 << 62)
	type run struct {
		keys []string
		args []any
		msgs []int // indexes into messages
	}
	var runs []*run
	open := make(map[int]*run) // the run taking a partition's messages
	for i, m := range messages {
		m.TraceParent = traceParent
		fields, err := recordFields(m)
		if err != nil {
			return nil, fmt.Errorf("redisstore: enqueue %s: %w", m.ID, err)
		}
		p := queue.Partition(m.ID, s.partitions)
		r := open[p]
		if r == nil || len(r.msgs) == enqueueRunMax {
			r = &run{keys: []string{IndexKey(p)}}
			open[p] = r
			runs = append(runs, r)
		}
		r.keys = append(r.keys, RecordKey(p, m.ID), StreamKey(m.Lane, p))
		r.args = append(r.args, 4+len(fields), m.IdempotencyKey, nonce+int64(i), m.Created.UnixMilli(), m.ID)
		r.args = append(r.args, fields...)
		r.msgs = append(r.msgs, i)
	}
	cmds := make([]*redis.Cmd, len(runs))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range runs {
			cmds[i] = enqueueScript.EvalSha(ctx, p, r.keys, r.args...)
		}
		return nil
	})
	// After a Redis restart the script cache is empty: send the body for
	// the runs that hit NOSCRIPT. Re-running is safe (see above).
	var retry []int
	for i, c := range cmds {
		if c.Err() != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range retry {
				cmds[i] = enqueueScript.Eval(ctx, p, runs[i].keys, runs[i].args...)
			}
			return nil
		})
	}
	created := make([]bool, len(messages))
	for i, c := range cmds {
		ns, err := c.Int64Slice()
		if err == nil && len(ns) != len(runs[i].msgs) {
			err = fmt.Errorf("the script answered for %d messages of %d", len(ns), len(runs[i].msgs))
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore: enqueue %s: %w", messages[runs[i].msgs[0]].ID, err)
		}
		for j, n := range ns {
			m := runs[i].msgs[j]
			if n < 0 {
				return nil, fmt.Errorf("redisstore: enqueue %s: %w", messages[m].ID, queue.ErrKeyCollision)
			}
			created[m] = n == 1
		}
	}
	return created, nil
}

// enqueueRunMax bounds the messages of one enqueue script run, so that a
// run keeps Redis busy for at most a few milliseconds.
const enqueueRunMax = 100

// GetMessage implements queue.Store and delivery.Queue. A message that is
// not finished while a worker holds its lease is reported SENDING.
func (s *Store) GetMessage(ctx context.Context, id string) (queue.Message, error) {
	p := queue.Partition(id, s.partitions)
	var rec *redis.MapStringStringCmd
	var mark *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		rec = pl.HGetAll(ctx, RecordKey(p, id))
		mark = pl.Get(ctx, MarkKey(p, id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return queue.Message{}, fmt.Errorf("redisstore: get message %s: %w", id, err)
	}
	vals := rec.Val()
	if len(vals) == 0 {
		return queue.Message{}, fmt.Errorf("redisstore: get message %s: %w", id, queue.ErrNotFound)
	}
	m, err := decodeRecord(id, vals)
	if err != nil {
		return queue.Message{}, fmt.Errorf("redisstore: get message %s: %w", id, err)
	}
	if !m.State.Done() && strings.HasPrefix(mark.Val(), "sending:") {
		m.State = queue.StateSending
	}
	return m, nil
}

// traceParent is the W3C traceparent of ctx's span, or "" when ctx has no
// valid span (tracing off).
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}
