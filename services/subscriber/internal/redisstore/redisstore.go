// Package redisstore is the subscriber service's Redis adapter: Store (the
// subscription.Store), Jobs (the background job stream) and Limiter (the
// GCRA abuse limits, with github.com/go-redis/redis_rate).
//
// Store keys. All carry the hash tag {s}, so they live in one Redis Cluster
// slot and every MULTI touches one slot (the service runs unchanged on
// Cluster; all subscriber data is then on one shard, which holds millions
// of subscribers comfortably):
//
//	sub:{s}:rec:<id>       hash    the record (fields: see encode)
//	sub:{s}:email:<hmac>   string  address index: HMAC-SHA256(email hash key,
//	                               identity key) in hex → id; no plaintext
//	sub:{s}:supp:<hmac>    string  an erased address that was suppressed
//	sub:{s}:idx:all        zset    every id, score 0 (ULIDs sort by time, so
//	                               ZRANGE BYLEX pages in sign-up order)
//	sub:{s}:idx:<state>    zset    the ids in that state
//	sub:{s}:topic:<topic>  zset    the ids that chose the topic (any state)
//	sub:{s}:slot:<slot>    zset    ACTIVE ids of one delivery slot
//	                               (subscription.Slot.String(), e.g.
//	                               "Asia/Kolkata/07/d", ".../w1" for weekly)
//	sub:{s}:tzs            zset    time zone → number of ACTIVE subscribers
//	sub:{s}:pending        zset    PENDING ids scored by sign-up time (purge)
//	sub:{s}:clientdata     zset    ids holding IP/UA, scored by the oldest
//	                               collection time (retention)
//
// Every change to a record and its indexes is one MULTI/EXEC guarded by
// WATCH on the record (and the address key on create), so readers never see
// a record in one state and indexed under another, and two concurrent
// sign-ups of one address make one record.
package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// maxTxAttempts bounds optimistic-transaction retries under contention on
// one record.
const maxTxAttempts = 32

// Store is a subscription.Store on Redis.
type Store struct {
	rdb       redis.UniversalClient
	emailHash []byte
}

var _ subscription.Store = (*Store)(nil)

// New returns a Store on rdb. emailHashKey keys the HMAC that turns
// addresses into index keys; changing it orphans the address index.
func New(rdb redis.UniversalClient, emailHashKey []byte) *Store {
	return &Store{rdb: rdb, emailHash: append([]byte(nil), emailHashKey...)}
}

const prefix = "sub:{s}:"

func recKey(id string) string { return prefix + "rec:" + id }

const (
	idxAll        = prefix + "idx:all"
	tzsKey        = prefix + "tzs"
	pendingKey    = prefix + "pending"
	clientDataKey = prefix + "clientdata"
)

func idxKey(s subscription.State) string { return prefix + "idx:" + s.String() }
func topicKey(t string) string           { return prefix + "topic:" + t }
func slotKey(s subscription.Slot) string { return prefix + "slot:" + s.String() }

func (s *Store) identityHash(identity string) string {
	h := hmac.New(sha256.New, s.emailHash)
	h.Write([]byte(identity))
	return hex.EncodeToString(h.Sum(nil))
}

func emailKey(hash string) string { return prefix + "email:" + hash }
func suppKey(hash string) string  { return prefix + "supp:" + hash }

// Create implements subscription.Store.
func (s *Store) Create(ctx context.Context, identity string, sub subscription.Subscriber) error {
	if !sub.State.Valid() || sub.ID == "" {
		return fmt.Errorf("redisstore: create %s: invalid record (state %s)", sub.ID, sub.State)
	}
	hash := s.identityHash(identity)
	ek := emailKey(hash)
	txf := func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, ek).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return subscription.ErrExists
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, ek, sub.ID, 0)
			p.HSet(ctx, recKey(sub.ID), encode(sub, hash))
			p.ZAdd(ctx, idxAll, redis.Z{Member: sub.ID})
			reindex(ctx, p, nil, &sub)
			return nil
		})
		return err
	}
	if err := s.retryWatch(ctx, txf, ek); err != nil {
		return fmt.Errorf("redisstore: create subscriber %s: %w", sub.ID, err)
	}
	return nil
}

// reindex moves a record's index entries from what before says to what
// after says (nil: none). It runs inside the record's MULTI.
func reindex(ctx context.Context, p redis.Pipeliner, before, after *subscription.Subscriber) {
	if before != nil {
		id := before.ID
		p.ZRem(ctx, idxKey(before.State), id)
		for _, t := range before.Preferences.Topics {
			p.ZRem(ctx, topicKey(t), id)
		}
		if before.State == subscription.StateActive {
			p.ZRem(ctx, slotKey(subscription.SlotOf(before.Preferences)), id)
			p.ZIncrBy(ctx, tzsKey, -1, before.Preferences.Timezone)
		}
		p.ZRem(ctx, pendingKey, id)
		p.ZRem(ctx, clientDataKey, id)
	}
	if after != nil {
		id := after.ID
		p.ZAdd(ctx, idxKey(after.State), redis.Z{Member: id})
		for _, t := range after.Preferences.Topics {
			p.ZAdd(ctx, topicKey(t), redis.Z{Member: id})
		}
		if after.State == subscription.StateActive {
			p.ZAdd(ctx, slotKey(subscription.SlotOf(after.Preferences)), redis.Z{Member: id})
			p.ZIncrBy(ctx, tzsKey, 1, after.Preferences.Timezone)
		}
		if after.State == subscription.StatePending {
			p.ZAdd(ctx, pendingKey, redis.Z{Member: id, Score: float64(after.Consent.SignupTime.Unix())})
		}
		if t, ok := oldestClientData(after.Consent); ok {
			p.ZAdd(ctx, clientDataKey, redis.Z{Member: id, Score: float64(t)})
		}
	}
	if before != nil && before.State == subscription.StateActive {
		p.ZRemRangeByScore(ctx, tzsKey, "-inf", "0")
	}
}

// oldestClientData is the Unix time of the oldest IP/UA the evidence holds.
func oldestClientData(c subscription.ConsentEvidence) (int64, bool) {
	var t int64
	ok := false
	if c.SignupIP != "" || c.SignupUserAgent != "" {
		t, ok = c.SignupTime.Unix(), true
	}
	if c.ConfirmIP != "" || c.ConfirmUserAgent != "" {
		if ct := c.ConfirmTime.Unix(); !ok || ct < t {
			t, ok = ct, true
		}
	}
	return t, ok
}

// retryWatch runs txf under WATCH keys, retrying when another client
// changed a watched key first.
func (s *Store) retryWatch(ctx context.Context, txf func(*redis.Tx) error, keys ...string) error {
	for range maxTxAttempts {
		err := s.rdb.Watch(ctx, txf, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return errors.New("too much contention; gave up")
}

// Get implements subscription.Store.
func (s *Store) Get(ctx context.Context, id string) (subscription.Subscriber, error) {
	m, err := s.rdb.HGetAll(ctx, recKey(id)).Result()
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: get subscriber %s: %w", id, err)
	}
	sub, _, err := decodeRecord(id, m)
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: get subscriber %s: %w", id, err)
	}
	return sub, nil
}

// GetByIdentity implements subscription.Store.
func (s *Store) GetByIdentity(ctx context.Context, identity string) (subscription.Subscriber, error) {
	id, err := s.rdb.Get(ctx, emailKey(s.identityHash(identity))).Result()
	if errors.Is(err, redis.Nil) {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: get subscriber by address: %w", subscription.ErrNotFound)
	}
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: get subscriber by address: %w", err)
	}
	return s.Get(ctx, id)
}

// Update implements subscription.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*subscription.Subscriber) (bool, error)) (subscription.Subscriber, error) {
	rk := recKey(id)
	var result subscription.Subscriber
	txf := func(tx *redis.Tx) error {
		m, err := tx.HGetAll(ctx, rk).Result()
		if err != nil {
			return err
		}
		cur, hash, err := decodeRecord(id, m)
		if err != nil {
			return err
		}
		before := cur
		before.Preferences.Topics = append([]string(nil), cur.Preferences.Topics...)
		changed, err := fn(&cur)
		if err != nil {
			return err
		}
		if !changed {
			result = before
			return nil
		}
		if cur.ID != before.ID || cur.Email != before.Email || !cur.State.Valid() {
			return fmt.Errorf("update may not change id or email, or set state %s", cur.State)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, rk, encode(cur, hash))
			reindex(ctx, p, &before, &cur)
			return nil
		})
		if err == nil {
			result = cur
		}
		return err
	}
	if err := s.retryWatch(ctx, txf, rk); err != nil {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: update subscriber %s: %w", id, err)
	}
	return result, nil
}

// Delete implements subscription.Store.
func (s *Store) Delete(ctx context.Context, id string, fn func(subscription.Subscriber) (bool, bool)) (subscription.Subscriber, error) {
	rk := recKey(id)
	var result subscription.Subscriber
	txf := func(tx *redis.Tx) error {
		m, err := tx.HGetAll(ctx, rk).Result()
		if err != nil {
			return err
		}
		cur, hash, err := decodeRecord(id, m)
		if err != nil {
			return err
		}
		result = cur
		del, keep := fn(cur)
		if !del {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, rk)
			p.ZRem(ctx, idxAll, id)
			reindex(ctx, p, &cur, nil)
			if hash != "" {
				p.Del(ctx, emailKey(hash))
				if keep {
					p.Set(ctx, suppKey(hash), "1", 0)
				}
			}
			return nil
		})
		return err
	}
	if err := s.retryWatch(ctx, txf, rk); err != nil {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: delete subscriber %s: %w", id, err)
	}
	return result, nil
}

// Suppressed implements subscription.Store.
func (s *Store) Suppressed(ctx context.Context, identity string) (bool, error) {
	n, err := s.rdb.Exists(ctx, suppKey(s.identityHash(identity))).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: suppressed: %w", err)
	}
	return n > 0, nil
}

// Unsuppress implements subscription.Store.
func (s *Store) Unsuppress(ctx context.Context, identity string) error {
	if err := s.rdb.Del(ctx, suppKey(s.identityHash(identity))).Err(); err != nil {
		return fmt.Errorf("redisstore: unsuppress: %w", err)
	}
	return nil
}
