package subscription

import (
	"context"
	"errors"
	"fmt"

	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
)

// errRevoked aborts an update whose token epoch is stale.
var errRevoked = errors.New("subscription: link revoked")

// Confirm makes the holder of a confirmation link an active subscriber,
// recording client as consent evidence. Confirming an active subscriber
// again succeeds without change; an unsubscribed or suppressed one is not
// re-activated (the returned record says so). An expired link gives
// ErrLinkExpired; any other bad link a validation error on "token".
func (s *Service) Confirm(ctx context.Context, token string, client Client) (Subscriber, error) {
	var errs validation.Errors
	client = checkClient(&errs, client)
	claims, tokErr := s.parseToken(&errs, token, linktoken.Confirm)
	if err := errs.Err(); err != nil {
		return Subscriber{}, err
	}
	if tokErr != nil {
		return Subscriber{}, tokErr
	}
	now := s.clock()
	sub, err := s.store.Update(ctx, claims.SubscriberID, func(cur *Subscriber) (bool, error) {
		if cur.TokenEpoch != claims.Epoch {
			return false, errRevoked
		}
		if cur.State != StatePending {
			return false, nil
		}
		cur.State = StateActive
		cur.UpdateTime = now
		cur.Consent.ConfirmTime = now
		cur.Consent.ConfirmIP = client.IP
		cur.Consent.ConfirmUserAgent = client.UserAgent
		return true, nil
	})
	if err != nil {
		return Subscriber{}, s.linkTargetError("confirm", claims, err)
	}
	return sub, nil
}

// Unsubscribe unsubscribes the holder of an unsubscribe or manage link at
// once, recording how. It is idempotent: an unsubscribed subscriber stays
// as they are (the first unsubscribe's time and channel are kept), and a
// suppressed one stays suppressed.
func (s *Service) Unsubscribe(ctx context.Context, token string, channel Channel) (Subscriber, error) {
	var errs validation.Errors
	claims, tokErr := s.parseToken(&errs, token, linktoken.Unsubscribe, linktoken.Manage)
	if err := errs.Err(); err != nil {
		return Subscriber{}, err
	}
	if tokErr != nil {
		return Subscriber{}, tokErr
	}
	now := s.clock()
	sub, err := s.store.Update(ctx, claims.SubscriberID, func(cur *Subscriber) (bool, error) {
		if cur.TokenEpoch != claims.Epoch {
			return false, errRevoked
		}
		if cur.State != StatePending && cur.State != StateActive {
			return false, nil
		}
		cur.State = StateUnsubscribed
		cur.UpdateTime = now
		cur.Consent.UnsubscribeTime = now
		cur.Consent.UnsubscribeChannel = channel
		return true, nil
	})
	if err != nil {
		return Subscriber{}, s.linkTargetError("unsubscribe", claims, err)
	}
	return sub, nil
}

// CheckConfirmLink verifies a confirmation link without changing anything,
// for the page a GET shows. It fails as Confirm would.
func (s *Service) CheckConfirmLink(ctx context.Context, token string) (Subscriber, error) {
	return s.checkLink(ctx, token, linktoken.Confirm)
}

// CheckUnsubscribeLink verifies an unsubscribe or manage link without
// changing anything, for the page a GET shows.
func (s *Service) CheckUnsubscribeLink(ctx context.Context, token string) (Subscriber, error) {
	return s.checkLink(ctx, token, linktoken.Unsubscribe, linktoken.Manage)
}

func (s *Service) checkLink(ctx context.Context, token string, purposes ...linktoken.Purpose) (Subscriber, error) {
	var errs validation.Errors
	claims, tokErr := s.parseToken(&errs, token, purposes...)
	if err := errs.Err(); err != nil {
		return Subscriber{}, err
	}
	if tokErr != nil {
		return Subscriber{}, tokErr
	}
	sub, err := s.store.Get(ctx, claims.SubscriberID)
	if err == nil && sub.TokenEpoch != claims.Epoch {
		err = errRevoked
	}
	if err != nil {
		return Subscriber{}, s.linkTargetError("check", claims, err)
	}
	return sub, nil
}

// parseToken verifies token for purposes. A bad token is recorded in errs
// as a violation on "token"; an expired one is returned as ErrLinkExpired.
func (s *Service) parseToken(errs *validation.Errors, token string, purposes ...linktoken.Purpose) (linktoken.Claims, error) {
	if token == "" {
		errs.Add("token", "is required")
		return linktoken.Claims{}, nil
	}
	claims, err := s.keys.Parse(token, s.clock(), purposes...)
	switch {
	case err == nil:
		return claims, nil
	case errors.Is(err, linktoken.ErrExpired):
		return linktoken.Claims{}, ErrLinkExpired
	case errors.Is(err, linktoken.ErrWrongPurpose):
		if purposes[0] == linktoken.Confirm {
			errs.Add("token", "is not a confirmation link")
		} else {
			errs.Add("token", "is not an unsubscribe link")
		}
	case errors.Is(err, linktoken.ErrMalformed):
		errs.Add("token", "is incomplete or damaged; open the whole link from the mail")
	default:
		errs.Add("token", "is not a valid link")
	}
	return linktoken.Claims{}, nil
}

// linkTargetError turns a store error for a verified token into what the
// caller sees: a link to a record that is gone or whose links were revoked
// is simply no longer valid.
func (s *Service) linkTargetError(op string, claims linktoken.Claims, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, errRevoked) {
		return validation.Field("token", "is no longer valid")
	}
	return fmt.Errorf("subscription: %s %s: %w", op, claims.SubscriberID, err)
}

// RevokeLinks bumps the subscriber's token epoch, so every link issued to
// them before stops working. Links issued afterwards work.
func (s *Service) RevokeLinks(ctx context.Context, id string) (Subscriber, error) {
	id, err := checkID(id)
	if err != nil {
		return Subscriber{}, err
	}
	now := s.clock()
	sub, err := s.store.Update(ctx, id, func(cur *Subscriber) (bool, error) {
		cur.TokenEpoch++
		cur.UpdateTime = now
		return true, nil
	})
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: revoke links of %s: %w", id, err)
	}
	return sub, nil
}
