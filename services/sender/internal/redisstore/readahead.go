package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// ReadAhead is the Store as the dispatcher uses it: Read also loads the
// records of the entries it returns, in one pipeline per read instead of one
// round trip per message, and GetMessage serves each of them once, if at
// most readAheadTTL old; everything else goes to Redis. A record read
// ahead is only where delivery starts: every change of state (attempt,
// sent, dead) is still checked by the atomic scripts against Redis.
//
// Only the dispatcher may use it: the API's lookups must see Redis.
type ReadAhead struct {
	*Store
	mu      sync.Mutex
	records map[string]readAheadRecord
}

type readAheadRecord struct {
	msg queue.Message
	at  time.Time
}

// Tuning of the read-ahead.
const (
	// readAheadTTL is how long a record read ahead may be used. Entries
	// wait in the dispatcher for at most a few batches' sends.
	readAheadTTL = 5 * time.Second
	// readAheadMax bounds the records held.
	readAheadMax = 10000
)

var _ delivery.Queue = (*ReadAhead)(nil)

// NewReadAhead wraps s for the dispatcher.
func NewReadAhead(s *Store) *ReadAhead {
	return &ReadAhead{Store: s, records: map[string]readAheadRecord{}}
}

// Read implements delivery.Queue: Store.Read, then the entries' records in
// one pipeline. A failure to load records is not an error: GetMessage then
// asks Redis.
func (r *ReadAhead) Read(ctx context.Context, p int, consumer string, count int, block time.Duration) ([]delivery.Entry, error) {
	entries, err := r.Store.Read(ctx, p, consumer, count, block)
	if err != nil || len(entries) == 0 {
		return entries, err
	}
	cmds := make([]*redis.MapStringStringCmd, len(entries))
	_, _ = r.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, e := range entries {
			if e.MessageID != "" {
				cmds[i] = pl.HGetAll(ctx, RecordKey(p, e.MessageID))
			}
		}
		return nil
	})
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rec := range r.records {
		if now.Sub(rec.at) > readAheadTTL {
			delete(r.records, id)
		}
	}
	for i, e := range entries {
		if cmds[i] == nil || len(r.records) >= readAheadMax {
			continue
		}
		vals, err := cmds[i].Result()
		if err != nil || len(vals) == 0 {
			continue // a missing record is reported by GetMessage, from Redis
		}
		if m, err := decodeRecord(e.MessageID, vals); err == nil {
			r.records[e.MessageID] = readAheadRecord{msg: m, at: now}
		}
	}
	return entries, nil
}

// GetMessage implements delivery.Queue: the record read ahead with the
// entry, once, or Redis.
func (r *ReadAhead) GetMessage(ctx context.Context, id string) (queue.Message, error) {
	r.mu.Lock()
	rec, ok := r.records[id]
	delete(r.records, id)
	r.mu.Unlock()
	if ok && time.Since(rec.at) <= readAheadTTL {
		return rec.msg, nil
	}
	return r.Store.GetMessage(ctx, id)
}
