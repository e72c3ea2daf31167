// Package memstore is an in-memory subscription.Store, for the exported
// fake (services/subscriber/subscribertest) and for tests that do not need
// Redis. It keeps the same indexes as redisstore in maps, so the domain
// behaves the same on it; it is not meant for production (no persistence,
// one process).
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Store is an in-memory subscription.Store, safe for concurrent use.
type Store struct {
	mu         sync.Mutex
	recs       map[string]subscription.Subscriber
	byIdentity map[string]string // identity → id
	identityOf map[string]string // id → identity
	suppressed map[string]bool   // identities erased while suppressed
}

var _ subscription.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		recs:       map[string]subscription.Subscriber{},
		byIdentity: map[string]string{},
		identityOf: map[string]string{},
		suppressed: map[string]bool{},
	}
}

// clone copies the slices of s, so callers never share them with the store.
func clone(s subscription.Subscriber) subscription.Subscriber {
	s.Preferences.Topics = slices.Clone(s.Preferences.Topics)
	s.Preferences.Keywords = slices.Clone(s.Preferences.Keywords)
	return s
}

// Create implements subscription.Store.
func (st *Store) Create(_ context.Context, identity string, s subscription.Subscriber) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.byIdentity[identity]; ok {
		return subscription.ErrExists
	}
	st.recs[s.ID] = clone(s)
	st.byIdentity[identity] = s.ID
	st.identityOf[s.ID] = identity
	return nil
}

// Get implements subscription.Store.
func (st *Store) Get(_ context.Context, id string) (subscription.Subscriber, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.recs[id]
	if !ok {
		return subscription.Subscriber{}, fmt.Errorf("memstore: get %s: %w", id, subscription.ErrNotFound)
	}
	return clone(s), nil
}

// GetByIdentity implements subscription.Store.
func (st *Store) GetByIdentity(ctx context.Context, identity string) (subscription.Subscriber, error) {
	st.mu.Lock()
	id, ok := st.byIdentity[identity]
	st.mu.Unlock()
	if !ok {
		return subscription.Subscriber{}, fmt.Errorf("memstore: get by address: %w", subscription.ErrNotFound)
	}
	return st.Get(ctx, id)
}

// Update implements subscription.Store.
func (st *Store) Update(_ context.Context, id string, fn func(*subscription.Subscriber) (bool, error)) (subscription.Subscriber, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, ok := st.recs[id]
	if !ok {
		return subscription.Subscriber{}, fmt.Errorf("memstore: update %s: %w", id, subscription.ErrNotFound)
	}
	next := clone(cur)
	changed, err := fn(&next)
	if err != nil {
		return subscription.Subscriber{}, err
	}
	if !changed {
		return clone(cur), nil
	}
	if next.ID != cur.ID || next.Email != cur.Email || !next.State.Valid() {
		return subscription.Subscriber{}, fmt.Errorf("memstore: update %s: may not change id or email, or set state %s", id, next.State)
	}
	st.recs[id] = clone(next)
	return next, nil
}

// sorted returns the records matching keep, in id order, after afterID.
func (st *Store) sorted(afterID string, limit int, keep func(subscription.Subscriber) bool) []subscription.Subscriber {
	st.mu.Lock()
	defer st.mu.Unlock()
	ids := make([]string, 0, len(st.recs))
	for id := range st.recs {
		if id > afterID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []subscription.Subscriber
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		if s := st.recs[id]; keep(s) {
			out = append(out, clone(s))
		}
	}
	return out
}

// List implements subscription.Store.
func (st *Store) List(_ context.Context, state subscription.State, topic, afterID string, limit int) ([]subscription.Subscriber, error) {
	return st.sorted(afterID, limit, func(s subscription.Subscriber) bool {
		return (state == subscription.StateUnspecified || s.State == state) &&
			(topic == "" || slices.Contains(s.Preferences.Topics, topic))
	}), nil
}

// ListSlot implements subscription.Store.
func (st *Store) ListSlot(_ context.Context, slot subscription.Slot, afterID string, limit int) ([]subscription.Subscriber, error) {
	return st.sorted(afterID, limit, func(s subscription.Subscriber) bool {
		return s.State == subscription.StateActive && subscription.SlotOf(s.Preferences) == slot
	}), nil
}

// Timezones implements subscription.Store.
func (st *Store) Timezones(context.Context) ([]string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for _, s := range st.recs {
		if s.State == subscription.StateActive && !slices.Contains(out, s.Preferences.Timezone) {
			out = append(out, s.Preferences.Timezone)
		}
	}
	slices.Sort(out)
	return out, nil
}

// PendingBefore implements subscription.Store.
func (st *Store) PendingBefore(_ context.Context, t time.Time, limit int) ([]string, error) {
	var ids []string
	for _, s := range st.sorted("", -1, func(s subscription.Subscriber) bool {
		return s.State == subscription.StatePending && s.Consent.SignupTime.Before(t)
	}) {
		if len(ids) == limit {
			break
		}
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// WithClientDataBefore implements subscription.Store.
func (st *Store) WithClientDataBefore(_ context.Context, t time.Time, afterID string, limit int) ([]string, error) {
	var ids []string
	for _, s := range st.sorted(afterID, limit, func(s subscription.Subscriber) bool {
		c := s.Consent
		return (c.SignupTime.Before(t) && (c.SignupIP != "" || c.SignupUserAgent != "")) ||
			(c.ConfirmTime.Before(t) && (c.ConfirmIP != "" || c.ConfirmUserAgent != ""))
	}) {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// Delete implements subscription.Store.
func (st *Store) Delete(_ context.Context, id string, fn func(subscription.Subscriber) (bool, bool)) (subscription.Subscriber, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, ok := st.recs[id]
	if !ok {
		return subscription.Subscriber{}, fmt.Errorf("memstore: delete %s: %w", id, subscription.ErrNotFound)
	}
	del, keep := fn(clone(cur))
	if !del {
		return clone(cur), nil
	}
	identity := st.identityOf[id]
	delete(st.recs, id)
	delete(st.identityOf, id)
	delete(st.byIdentity, identity)
	if keep {
		st.suppressed[identity] = true
	}
	return cur, nil
}

// Suppressed implements subscription.Store.
func (st *Store) Suppressed(_ context.Context, identity string) (bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.suppressed[identity], nil
}

// Unsuppress implements subscription.Store.
func (st *Store) Unsuppress(_ context.Context, identity string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.suppressed, identity)
	return nil
}
