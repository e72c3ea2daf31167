package subscription

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/platform/validation"
)

// Get returns the subscriber with id.
func (s *Service) Get(ctx context.Context, id string) (Subscriber, error) {
	id, err := checkID(id)
	if err != nil {
		return Subscriber{}, err
	}
	sub, err := s.store.Get(ctx, id)
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: get %s: %w", id, err)
	}
	return sub, nil
}

// GetByEmail returns the subscriber with the address email (compared as the
// parser normalises it, case-insensitively).
func (s *Service) GetByEmail(ctx context.Context, email string) (Subscriber, error) {
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return Subscriber{}, validation.Field("email", reason(err))
	}
	sub, err := s.store.GetByIdentity(ctx, addr.Key)
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: get by email: %w", err)
	}
	return sub, nil
}

// checkID validates a subscriber id and returns it in canonical (upper)
// case.
func checkID(id string) (string, error) { return ulidField("subscriber_id", id) }

// ulidField validates the subscriber id in field.
func ulidField(field, id string) (string, error) {
	if id == "" {
		return "", validation.Field(field, "is required")
	}
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return "", validation.Field(field, "is not a subscriber id")
	}
	return u.String(), nil
}

// List returns one page of subscribers in id (= sign-up) order.
func (s *Service) List(ctx context.Context, req ListRequest) (ListResult, error) {
	var errs validation.Errors
	if req.State != StateUnspecified && !req.State.Valid() {
		errs.Add("state", "is not a subscriber state")
	}
	size, after := checkPage(&errs, req.PageSize, req.PageToken, DefaultPageSize, MaxPageSize)
	if err := errs.Err(); err != nil {
		return ListResult{}, err
	}
	if len(req.Topic) > 128 {
		errs.Add("topic", "is not a topic id")
	}
	if err := errs.Err(); err != nil {
		return ListResult{}, err
	}
	subs, next, err := s.page(ctx, req.State, req.Topic, after, size)
	if err != nil {
		return ListResult{}, err
	}
	return ListResult{Subscribers: subs, NextPageToken: next}, nil
}

// ListDue returns one page of the ACTIVE subscribers due a digest at
// req.DueTime (see DueSlots for what "due" means), each with their
// preferences and freshly signed unsubscribe and manage links. It reads only
// the delivery-slot index entries of the due slots, never all subscribers.
// Pages go slot by slot in a fixed order, so page tokens stay valid while
// subscribers come and go.
func (s *Service) ListDue(ctx context.Context, req ListDueRequest) (ListDueResult, error) {
	var errs validation.Errors
	size, _ := checkPage(&errs, req.PageSize, "", DefaultDuePageSize, MaxDuePageSize)
	fromSlot, after, ok := decodeDueToken(req.PageToken)
	if !ok {
		errs.Add("page_token", "is not a page token from a previous response")
	}
	if err := errs.Err(); err != nil {
		return ListDueResult{}, err
	}
	at := req.DueTime
	if at.IsZero() {
		at = s.clock()
	}
	slots, err := s.dueSlots(ctx, at)
	if err != nil {
		return ListDueResult{}, err
	}
	out := ListDueResult{Subscribers: make([]DueSubscriber, 0, min(size, 64))}
	for _, slot := range slots {
		name := slot.String()
		if name < fromSlot {
			continue
		}
		if name > fromSlot {
			after = ""
		}
		for {
			want := size - len(out.Subscribers)
			subs, err := s.store.ListSlot(ctx, slot, after, want+1)
			if err != nil {
				return ListDueResult{}, fmt.Errorf("subscription: list due in %s: %w", name, err)
			}
			more := len(subs) > want
			if more {
				subs = subs[:want]
			}
			for _, sub := range subs {
				d, err := s.dueSubscriber(sub)
				if err != nil {
					return ListDueResult{}, err
				}
				out.Subscribers = append(out.Subscribers, d)
			}
			if more {
				out.NextPageToken = encodeDueToken(name, subs[len(subs)-1].ID)
				return out, nil
			}
			break
		}
		if len(out.Subscribers) == size {
			// The page is full exactly at the end of a slot; the next page
			// starts after it.
			out.NextPageToken = encodeDueToken(name+"\x00", "")
			return out, nil
		}
	}
	return out, nil
}

func (s *Service) dueSubscriber(sub Subscriber) (DueSubscriber, error) {
	unsub, err := s.unsubscribeURL(sub)
	if err != nil {
		return DueSubscriber{}, err
	}
	manage, err := s.manageURL(sub)
	if err != nil {
		return DueSubscriber{}, err
	}
	return DueSubscriber{ID: sub.ID, Email: sub.Email, Preferences: sub.Preferences, UnsubscribeURL: unsub, ManageURL: manage}, nil
}

// dueSlots is every due slot of every time zone in use, sorted by name.
func (s *Service) dueSlots(ctx context.Context, at time.Time) ([]Slot, error) {
	zones, err := s.store.Timezones(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscription: list time zones: %w", err)
	}
	var slots []Slot
	for _, z := range zones {
		loc, err := LoadLocation(z)
		if err != nil {
			continue // validated on the way in; a zone this build lacks has no one due
		}
		slots = append(slots, DueSlots(at, loc)...)
	}
	slices.SortFunc(slots, func(a, b Slot) int { return strings.Compare(a.String(), b.String()) })
	return slots, nil
}

// encodeDueToken and decodeDueToken are the opaque ListDue page token: the
// slot name and the last id returned in it.
func encodeDueToken(slot, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(slot + "|" + after))
}

func decodeDueToken(tok string) (slot, after string, ok bool) {
	if tok == "" {
		return "", "", true
	}
	if len(tok) > 256 {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		return "", "", false
	}
	slot, after, ok = strings.Cut(string(raw), "|")
	if !ok || slot == "" {
		return "", "", false
	}
	if after != "" {
		if _, err := ulid.ParseStrict(after); err != nil {
			return "", "", false
		}
	}
	return slot, after, true
}

// page reads one more record than asked for, to know whether there is a
// next page without handing out a token that leads to an empty one.
func (s *Service) page(ctx context.Context, state State, topic, after string, size int) ([]Subscriber, string, error) {
	subs, err := s.store.List(ctx, state, topic, after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("subscription: list %s: %w", state, err)
	}
	if len(subs) <= size {
		return subs, "", nil
	}
	subs = subs[:size]
	return subs, base64.RawURLEncoding.EncodeToString([]byte(subs[size-1].ID)), nil
}

// checkPage validates AIP-158 paging fields: size 0 means def, above max is
// capped at max; the token is an opaque encoding of the last id returned.
func checkPage(errs *validation.Errors, size int, token string, defaultSize, maxSize int) (int, string) {
	switch {
	case size < 0:
		errs.Add("page_size", "must not be negative")
	case size == 0:
		size = defaultSize
	case size > maxSize:
		size = maxSize
	}
	if token == "" {
		return size, ""
	}
	var (
		raw  []byte
		err  = errors.New("too long")
		last ulid.ULID
	)
	if len(token) <= 64 {
		raw, err = base64.RawURLEncoding.Strict().DecodeString(token)
	}
	if err == nil {
		last, err = ulid.ParseStrict(string(raw))
	}
	if err != nil {
		errs.Add("page_token", "is not a page token from a previous response")
		return size, ""
	}
	return size, last.String()
}
