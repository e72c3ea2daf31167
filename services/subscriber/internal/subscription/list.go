package subscription

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

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
func checkID(id string) (string, error) {
	if id == "" {
		return "", validation.Field("subscriber_id", "is required")
	}
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return "", validation.Field("subscriber_id", "is not a subscriber id")
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
	subs, next, err := s.page(ctx, req.State, after, size)
	if err != nil {
		return ListResult{}, err
	}
	return ListResult{Subscribers: subs, NextPageToken: next}, nil
}

// ListDue returns one page of the subscribers due a digest at req.DueTime,
// each with a freshly signed unsubscribe link. For now every ACTIVE
// subscriber is due at any time: delivery-hour scheduling comes later.
func (s *Service) ListDue(ctx context.Context, req ListDueRequest) (ListDueResult, error) {
	var errs validation.Errors
	size, after := checkPage(&errs, req.PageSize, req.PageToken, DefaultDuePageSize, MaxDuePageSize)
	if err := errs.Err(); err != nil {
		return ListDueResult{}, err
	}
	subs, next, err := s.page(ctx, StateActive, after, size)
	if err != nil {
		return ListDueResult{}, err
	}
	out := ListDueResult{Subscribers: make([]DueSubscriber, 0, len(subs)), NextPageToken: next}
	for _, sub := range subs {
		link, err := s.unsubscribeURL(sub)
		if err != nil {
			return ListDueResult{}, err
		}
		out.Subscribers = append(out.Subscribers, DueSubscriber{ID: sub.ID, Email: sub.Email, UnsubscribeURL: link})
	}
	return out, nil
}

// page reads one more record than asked for, to know whether there is a
// next page without handing out a token that leads to an empty one.
func (s *Service) page(ctx context.Context, state State, after string, size int) ([]Subscriber, string, error) {
	subs, err := s.store.List(ctx, state, after, size+1)
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
