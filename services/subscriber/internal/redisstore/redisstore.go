// Package redisstore keeps subscriber records in Redis; it implements
// subscription.Store.
//
// Keys (all under the subscriber service's prefix "sub:"):
//
//	sub:rec:<id>          hash    the record (fields: see encode)
//	sub:email:<hmac>      string  address index: HMAC-SHA256(email hash key,
//	                              identity key) in hex → id, so the index holds
//	                              no plaintext address
//	sub:idx:all           zset    every id, score 0 (ULIDs sort by time, so
//	                              ZRANGE BYLEX pages in sign-up order)
//	sub:idx:<state>       zset    the ids in that state (pending, active,
//	                              unsubscribed, suppressed)
//
// Every change to a record and its indexes is one MULTI/EXEC guarded by
// WATCH, so readers never see a record in one state and indexed under
// another, and two concurrent sign-ups of one address make one record.
//
// Redis Cluster: these keys hash to different slots, and WATCH/MULTI across
// slots is refused by Cluster. Running on Cluster needs one hash tag on every
// key (e.g. "sub:{s}:rec:<id>"), which puts all subscriber data in one slot;
// that is fine for millions of subscribers, but is a key migration, so it is
// left until Cluster is actually used (see the service README).
package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

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

func recKey(id string) string { return "sub:rec:" + id }

const idxAll = "sub:idx:all"

func idxKey(s subscription.State) string { return "sub:idx:" + s.String() }

func (s *Store) emailKey(identity string) string {
	h := hmac.New(sha256.New, s.emailHash)
	h.Write([]byte(identity))
	return "sub:email:" + hex.EncodeToString(h.Sum(nil))
}

// Create implements subscription.Store.
func (s *Store) Create(ctx context.Context, identity string, sub subscription.Subscriber) error {
	if !sub.State.Valid() || sub.ID == "" {
		return fmt.Errorf("redisstore: create %s: invalid record (state %s)", sub.ID, sub.State)
	}
	ek := s.emailKey(identity)
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
			p.HSet(ctx, recKey(sub.ID), encode(sub))
			p.ZAdd(ctx, idxAll, redis.Z{Member: sub.ID})
			p.ZAdd(ctx, idxKey(sub.State), redis.Z{Member: sub.ID})
			return nil
		})
		return err
	}
	if err := s.retryWatch(ctx, txf, ek); err != nil {
		return fmt.Errorf("redisstore: create subscriber %s: %w", sub.ID, err)
	}
	return nil
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
	sub, err := decodeRecord(id, m)
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("redisstore: get subscriber %s: %w", id, err)
	}
	return sub, nil
}

// GetByIdentity implements subscription.Store.
func (s *Store) GetByIdentity(ctx context.Context, identity string) (subscription.Subscriber, error) {
	id, err := s.rdb.Get(ctx, s.emailKey(identity)).Result()
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
		cur, err := decodeRecord(id, m)
		if err != nil {
			return err
		}
		before := cur
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
			p.HSet(ctx, rk, encode(cur))
			if cur.State != before.State {
				p.ZRem(ctx, idxKey(before.State), id)
				p.ZAdd(ctx, idxKey(cur.State), redis.Z{Member: id})
			}
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

// List implements subscription.Store.
//
// The index is read before the records, so a record that left the state (or
// was removed) in between is skipped rather than listed under the wrong
// state. List then reads on from where it stopped, so that fewer than limit
// records only ever means the index has no more: callers page on that.
func (s *Store) List(ctx context.Context, state subscription.State, afterID string, limit int) ([]subscription.Subscriber, error) {
	key := idxAll
	if state != subscription.StateUnspecified {
		key = idxKey(state)
	}
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
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HGetAll(ctx, recKey(id))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("redisstore: list %s: %w", key, err)
		}
		for i, cmd := range cmds {
			sub, err := decodeRecord(ids[i], cmd.Val())
			if errors.Is(err, subscription.ErrNotFound) {
				continue // removed between the range and the read
			}
			if err != nil {
				return nil, fmt.Errorf("redisstore: list %s: %w", key, err)
			}
			if state != subscription.StateUnspecified && sub.State != state {
				continue // changed state between the range and the read
			}
			subs = append(subs, sub)
		}
		if len(ids) < want {
			break
		}
		afterID = ids[len(ids)-1]
	}
	return subs, nil
}

// Record hash fields.
const (
	fID                 = "id"
	fEmail              = "email"
	fState              = "state"
	fEpoch              = "token_epoch"
	fCreateTime         = "create_time"
	fUpdateTime         = "update_time"
	fConsentVersion     = "consent_text_version"
	fSignupTime         = "signup_time"
	fSignupIP           = "signup_ip"
	fSignupUA           = "signup_user_agent"
	fConfirmTime        = "confirm_time"
	fConfirmIP          = "confirm_ip"
	fConfirmUA          = "confirm_user_agent"
	fUnsubscribeTime    = "unsubscribe_time"
	fUnsubscribeChannel = "unsubscribe_channel"
)

// encode writes every field, empty ones included, so an HSET replaces the
// whole record.
func encode(s subscription.Subscriber) map[string]any {
	c := s.Consent
	return map[string]any{
		fID:                 s.ID,
		fEmail:              s.Email,
		fState:              s.State.String(),
		fEpoch:              strconv.FormatUint(s.TokenEpoch, 10),
		fCreateTime:         formatTime(s.CreateTime),
		fUpdateTime:         formatTime(s.UpdateTime),
		fConsentVersion:     c.ConsentTextVersion,
		fSignupTime:         formatTime(c.SignupTime),
		fSignupIP:           c.SignupIP,
		fSignupUA:           c.SignupUserAgent,
		fConfirmTime:        formatTime(c.ConfirmTime),
		fConfirmIP:          c.ConfirmIP,
		fConfirmUA:          c.ConfirmUserAgent,
		fUnsubscribeTime:    formatTime(c.UnsubscribeTime),
		fUnsubscribeChannel: string(c.UnsubscribeChannel),
	}
}

// decodeRecord parses a record hash; an empty one is ErrNotFound.
func decodeRecord(id string, m map[string]string) (subscription.Subscriber, error) {
	if len(m) == 0 {
		return subscription.Subscriber{}, subscription.ErrNotFound
	}
	if m[fID] != id {
		return subscription.Subscriber{}, fmt.Errorf("record %s: id field is %q", id, m[fID])
	}
	state, err := subscription.ParseState(m[fState])
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: %w", id, err)
	}
	epoch, err := strconv.ParseUint(m[fEpoch], 10, 64)
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: token epoch %q: %w", id, m[fEpoch], err)
	}
	var errs []error
	t := func(field string) time.Time {
		v, err := parseTime(m[field])
		if err != nil {
			errs = append(errs, fmt.Errorf("record %s: %s: %w", id, field, err))
		}
		return v
	}
	sub := subscription.Subscriber{
		ID:         id,
		Email:      m[fEmail],
		State:      state,
		TokenEpoch: epoch,
		CreateTime: t(fCreateTime),
		UpdateTime: t(fUpdateTime),
		Consent: subscription.ConsentEvidence{
			ConsentTextVersion: m[fConsentVersion],
			SignupTime:         t(fSignupTime),
			SignupIP:           m[fSignupIP],
			SignupUserAgent:    m[fSignupUA],
			ConfirmTime:        t(fConfirmTime),
			ConfirmIP:          m[fConfirmIP],
			ConfirmUserAgent:   m[fConfirmUA],
			UnsubscribeTime:    t(fUnsubscribeTime),
			UnsubscribeChannel: subscription.Channel(m[fUnsubscribeChannel]),
		},
	}
	if err := errors.Join(errs...); err != nil {
		return subscription.Subscriber{}, err
	}
	return sub, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
