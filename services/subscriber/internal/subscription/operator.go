package subscription

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/platform/validation"
)

// MaxReasonLength bounds a suppression reason, in bytes.
const MaxReasonLength = 512

// FailureKind is what a delivery failure was.
type FailureKind string

// The failure kinds RecordDeliveryFailure accepts.
const (
	FailureHardBounce FailureKind = "hard-bounce"
	FailureComplaint  FailureKind = "complaint"
)

// Ref names a subscriber by id or by address: exactly one is set.
type Ref struct {
	ID    string
	Email string
}

// resolve returns the subscriber named by r. idField names the proto field
// of the id, for errors.
func (s *Service) resolve(ctx context.Context, r Ref, idField string) (Subscriber, error) {
	switch {
	case r.ID != "" && r.Email != "":
		return Subscriber{}, &validation.Error{Violations: []validation.Violation{
			{Field: idField, Description: "set exactly one of " + idField + " and email, not both"},
			{Field: "email", Description: "set exactly one of " + idField + " and email, not both"},
		}}
	case r.ID == "" && r.Email == "":
		return Subscriber{}, &validation.Error{Violations: []validation.Violation{
			{Field: idField, Description: "set exactly one of " + idField + " and email"},
			{Field: "email", Description: "set exactly one of " + idField + " and email"},
		}}
	case r.ID != "":
		id, err := ulidField(idField, r.ID)
		if err != nil {
			return Subscriber{}, err
		}
		sub, err := s.store.Get(ctx, id)
		if err != nil {
			return Subscriber{}, fmt.Errorf("subscription: get %s: %w", id, err)
		}
		return sub, nil
	}
	return s.GetByEmail(ctx, r.Email)
}

// Lookup returns the subscriber named by r (id or email); idField is the
// request's name of the id field ("id" or "subscriber_id").
func (s *Service) Lookup(ctx context.Context, r Ref, idField string) (Subscriber, error) {
	return s.resolve(ctx, r, idField)
}

func checkReason(errs *validation.Errors, reason string) string {
	reason = strings.TrimSpace(reason)
	if len(reason) > MaxReasonLength || !allPrint(reason) {
		errs.Addf("reason", "must be at most %d printable bytes", MaxReasonLength)
	}
	return reason
}

// Suppress makes the subscriber SUPPRESSED with reason: no mail of any kind
// goes to them, Subscribe cannot undo it, and mail still queued for them is
// cancelled. Suppressing a suppressed subscriber keeps the first reason.
func (s *Service) Suppress(ctx context.Context, r Ref, reason string) (Subscriber, error) {
	var errs validation.Errors
	reason = checkReason(&errs, reason)
	if reason == "" {
		reason = "operator"
	}
	if err := errs.Err(); err != nil {
		return Subscriber{}, err
	}
	sub, err := s.resolve(ctx, r, "id")
	if err != nil {
		return Subscriber{}, err
	}
	return s.suppress(ctx, sub.ID, reason, ChannelOperator)
}

func (s *Service) suppress(ctx context.Context, id, reason string, ch Channel) (Subscriber, error) {
	now := s.clock()
	changed, left := false, false
	sub, err := s.store.Update(ctx, id, func(cur *Subscriber) (bool, error) {
		changed, left = false, false
		if cur.State == StateSuppressed {
			return false, nil
		}
		changed = true
		left = cur.State == StatePending || cur.State == StateActive
		if cur.Consent.UnsubscribeTime.IsZero() || cur.State != StateUnsubscribed {
			cur.Consent.UnsubscribeTime = now
			cur.Consent.UnsubscribeChannel = ch
		}
		cur.State = StateSuppressed
		cur.SuppressReason = reason
		cur.SuppressTime = now
		cur.UpdateTime = now
		return true, nil
	})
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: suppress %s: %w", id, err)
	}
	if !changed {
		return sub, nil
	}
	if left {
		s.metrics.Left(ch)
	}
	if err := s.cancelQueued(ctx, sub); err != nil {
		return Subscriber{}, err
	}
	return sub, nil
}

// Unsuppress lifts a suppression: the subscriber becomes UNSUBSCRIBED (they
// must subscribe and confirm again to get mail). For an erased address it
// removes the suppression marker (r must then name the address).
func (s *Service) Unsuppress(ctx context.Context, r Ref) (Subscriber, error) {
	sub, err := s.resolve(ctx, r, "id")
	if errors.Is(err, ErrNotFound) && r.Email != "" {
		addr, _ := mailaddr.Parse(r.Email)
		if err := s.store.Unsuppress(ctx, addr.Key); err != nil {
			return Subscriber{}, fmt.Errorf("subscription: unsuppress: %w", err)
		}
		return Subscriber{}, fmt.Errorf("subscription: unsuppress: %w", ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, err
	}
	now := s.clock()
	sub, err = s.store.Update(ctx, sub.ID, func(cur *Subscriber) (bool, error) {
		if cur.State != StateSuppressed {
			return false, nil
		}
		cur.State = StateUnsubscribed
		cur.SuppressReason = ""
		cur.SuppressTime = time.Time{}
		cur.UpdateTime = now
		return true, nil
	})
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: unsuppress %s: %w", sub.ID, err)
	}
	return sub, nil
}

// RecordDeliveryFailure records a hard bounce or complaint for address:
// its subscriber becomes SUPPRESSED with the reason and time. Idempotent: a
// second report changes nothing. An unknown address is not an error (the
// mail may have been for an erased subscriber).
func (s *Service) RecordDeliveryFailure(ctx context.Context, email string, kind FailureKind, detail string) error {
	var errs validation.Errors
	addr, err := mailaddr.Parse(email)
	if err != nil {
		errs.Add("email", reason(err))
	}
	if kind != FailureHardBounce && kind != FailureComplaint {
		errs.Add("kind", "must be a hard bounce or a complaint")
	}
	detail = checkReason(&errs, detail)
	if err := errs.Err(); err != nil {
		return err
	}
	s.metrics.DeliveryFailure(kind)
	sub, err := s.store.GetByIdentity(ctx, addr.Key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("subscription: record delivery failure: %w", err)
	}
	why := string(kind)
	if detail != "" {
		why += ": " + detail
	}
	_, err = s.suppress(ctx, sub.ID, why, ChannelBounce)
	return err
}

// Erase deletes everything held about the subscriber (GDPR erasure). Their
// links stop working. If they were SUPPRESSED, only a keyed hash of the
// address remains, so the address stays suppressed. Erasing again is
// ErrNotFound.
func (s *Service) Erase(ctx context.Context, r Ref) error {
	sub, err := s.resolve(ctx, r, "id")
	if err != nil {
		return err
	}
	if _, err := s.store.Delete(ctx, sub.ID, func(cur Subscriber) (bool, bool) {
		return true, cur.State == StateSuppressed
	}); err != nil {
		return fmt.Errorf("subscription: erase %s: %w", sub.ID, err)
	}
	return nil
}

// Export returns everything held about the subscriber (GDPR access): the
// record, consent evidence and preferences included.
func (s *Service) Export(ctx context.Context, r Ref) (Subscriber, error) {
	return s.resolve(ctx, r, "id")
}

// PurgeExpired deletes PENDING records whose sign-up is older than the
// pending TTL, up to limit of them, and returns how many it deleted.
func (s *Service) PurgeExpired(ctx context.Context, limit int) (int, error) {
	cutoff := s.clock().Add(-s.pendingTTL)
	ids, err := s.store.PendingBefore(ctx, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("subscription: purge: %w", err)
	}
	n := 0
	for _, id := range ids {
		_, err := s.store.Delete(ctx, id, func(cur Subscriber) (bool, bool) {
			return cur.State == StatePending && cur.Consent.SignupTime.Before(cutoff), false
		})
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return n, fmt.Errorf("subscription: purge %s: %w", id, err)
		default:
			n++
		}
	}
	return n, nil
}

// DropOldClientData removes sign-up and confirmation IP addresses and user
// agents collected longer ago than the retention, up to limit records, and
// returns how many records it changed. With no retention configured it does
// nothing.
func (s *Service) DropOldClientData(ctx context.Context, limit int) (int, error) {
	if s.retention == 0 {
		return 0, nil
	}
	cutoff := s.clock().Add(-s.retention)
	ids, err := s.store.WithClientDataBefore(ctx, cutoff, "", limit)
	if err != nil {
		return 0, fmt.Errorf("subscription: retention: %w", err)
	}
	n := 0
	for _, id := range ids {
		_, err := s.store.Update(ctx, id, func(cur *Subscriber) (bool, error) {
			c := &cur.Consent
			changed := false
			if c.SignupTime.Before(cutoff) && (c.SignupIP != "" || c.SignupUserAgent != "") {
				c.SignupIP, c.SignupUserAgent, changed = "", "", true
			}
			if c.ConfirmTime.Before(cutoff) && (c.ConfirmIP != "" || c.ConfirmUserAgent != "") {
				c.ConfirmIP, c.ConfirmUserAgent, changed = "", "", true
			}
			return changed, nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return n, fmt.Errorf("subscription: retention %s: %w", id, err)
		}
		n++
	}
	return n, nil
}
