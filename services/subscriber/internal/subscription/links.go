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
	confirmed := false
	sub, err := s.store.Update(ctx, claims.SubscriberID, func(cur *Subscriber) (bool, error) {
		confirmed = false
		if cur.TokenEpoch != claims.Epoch {
			return false, errRevoked
		}
		if cur.State != StatePending {
			return false, nil
		}
		confirmed = true
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
	if confirmed {
		s.metrics.Confirmed()
	}
	return sub, nil
}

// Unsubscribe unsubscribes the holder of an unsubscribe or manage link at
// once, recording how, and queues the cancellation of every mail the sender
// still holds for the address (so nothing queued before is sent after). It
// is idempotent: an unsubscribed subscriber stays as they are (the first
// unsubscribe's time and channel are kept), and a suppressed one stays
// suppressed.
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
	changed := false
	sub, err := s.store.Update(ctx, claims.SubscriberID, func(cur *Subscriber) (bool, error) {
		changed = false
		if cur.TokenEpoch != claims.Epoch {
			return false, errRevoked
		}
		if cur.State != StatePending && cur.State != StateActive {
			return false, nil
		}
		changed = true
		cur.State = StateUnsubscribed
		cur.UpdateTime = now
		cur.Consent.UnsubscribeTime = now
		cur.Consent.UnsubscribeChannel = channel
		return true, nil
	})
	if err != nil {
		return Subscriber{}, s.linkTargetError("unsubscribe", claims, err)
	}
	if changed {
		s.metrics.Left(channel)
		if err := s.cancelQueued(ctx, sub); err != nil {
			return Subscriber{}, err
		}
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
		switch purposes[0] {
		case linktoken.Confirm:
			errs.Add("token", "is not a confirmation link")
		case linktoken.Manage:
			errs.Add("token", "is not a preferences link")
		default:
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

// cancelQueued queues a JobCancel for sub's address when sub gets no mail.
func (s *Service) cancelQueued(ctx context.Context, sub Subscriber) error {
	if sub.State != StateUnsubscribed && sub.State != StateSuppressed {
		return nil
	}
	if err := s.jobs.Push(ctx, Job{Kind: JobCancel, Email: sub.Email}); err != nil {
		return fmt.Errorf("subscription: queue cancellation for %s: %w", sub.ID, err)
	}
	return nil
}

// GetPreferences returns the subscriber holding a manage link, for the
// preferences page. It changes nothing.
func (s *Service) GetPreferences(ctx context.Context, token string) (Subscriber, error) {
	return s.checkLink(ctx, token, linktoken.Manage)
}

// UpdatePreferences changes the preferences of the holder of a manage link.
// Fields of u left nil keep their value. The state does not change (an
// unsubscribed subscriber stays unsubscribed); a suppressed subscriber's
// preferences cannot be changed (a validation error on "token"). Invalid
// values are validation errors on "preferences.<field>".
func (s *Service) UpdatePreferences(ctx context.Context, token string, u PreferencesUpdate) (Subscriber, error) {
	var errs validation.Errors
	claims, tokErr := s.parseToken(&errs, token, linktoken.Manage)
	if err := errs.Err(); err != nil {
		return Subscriber{}, err
	}
	if tokErr != nil {
		return Subscriber{}, tokErr
	}
	cur, err := s.store.Get(ctx, claims.SubscriberID)
	if err == nil && cur.TokenEpoch != claims.Epoch {
		err = errRevoked
	}
	if err != nil {
		return Subscriber{}, s.linkTargetError("update preferences", claims, err)
	}
	prefs, err := s.mergePreferences(ctx, cur.Preferences, u)
	if err != nil {
		return Subscriber{}, err
	}
	now := s.clock()
	sub, err := s.store.Update(ctx, claims.SubscriberID, func(c *Subscriber) (bool, error) {
		if c.TokenEpoch != claims.Epoch {
			return false, errRevoked
		}
		if c.State == StateSuppressed {
			return false, validation.Field("token", "belongs to a suppressed address; contact the sender")
		}
		c.Preferences = prefs
		c.UpdateTime = now
		return true, nil
	})
	if err != nil {
		return Subscriber{}, s.linkTargetError("update preferences", claims, err)
	}
	return sub, nil
}

// mergePreferences applies u to cur and validates the result.
func (s *Service) mergePreferences(ctx context.Context, cur Preferences, u PreferencesUpdate) (Preferences, error) {
	in := prefInput{
		topics: cur.Topics, keywords: cur.Keywords, frequency: cur.Frequency, weeklyDay: cur.WeeklyDay,
		deliveryHour: &cur.DeliveryHour, timezone: cur.Timezone, locale: cur.Locale,
	}
	if u.Topics != nil {
		in.topics = *u.Topics
	}
	if u.Keywords != nil {
		in.keywords = *u.Keywords
	}
	if u.Frequency != nil {
		in.frequency = *u.Frequency
	}
	if u.WeeklyDay != nil {
		in.weeklyDay = *u.WeeklyDay
	}
	if u.DeliveryHour != nil {
		in.deliveryHour = u.DeliveryHour
	}
	if u.Timezone != nil {
		in.timezone = *u.Timezone
	}
	if u.Locale != nil {
		in.locale = *u.Locale
	}
	var errs validation.Errors
	p, err := s.checkPreferences(ctx, &errs, "preferences.", in)
	if err != nil {
		return Preferences{}, err
	}
	return p, errs.Err()
}
