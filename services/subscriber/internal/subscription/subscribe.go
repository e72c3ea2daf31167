package subscription

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
)

// Subscribe signs req.Email up. Whatever the address's state, a nil error
// looks the same to the caller; what happens differs:
//   - new: a PENDING record is created and a confirmation mail sent;
//   - UNSUBSCRIBED: back to PENDING with fresh consent evidence, and a
//     confirmation mail;
//   - PENDING: the confirmation mail is sent again;
//   - ACTIVE: an "already subscribed" mail with an unsubscribe link;
//   - SUPPRESSED: nothing.
//
// Mails are throttled to one of each kind per address per 10 minutes. If the
// mail cannot be handed to the sender, the record stays PENDING and the error
// wraps ErrMailUnavailable; calling again retries.
func (s *Service) Subscribe(ctx context.Context, req SubscribeRequest) error {
	addr, consent, err := s.checkSubscribe(req)
	if err != nil {
		return err
	}
	sub, err := s.store.GetByIdentity(ctx, addr.Key)
	switch {
	case errors.Is(err, ErrNotFound):
		sub, err = s.create(ctx, addr, consent)
		if err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("subscription: subscribe: %w", err)
	case sub.State == StateUnsubscribed:
		sub, err = s.store.Update(ctx, sub.ID, func(cur *Subscriber) (bool, error) {
			if cur.State != StateUnsubscribed {
				return false, nil // changed under us; act on what it is now
			}
			cur.State = StatePending
			cur.Consent = consent
			cur.UpdateTime = consent.SignupTime
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("subscription: subscribe %s again: %w", sub.ID, err)
		}
	}
	switch sub.State {
	case StatePending:
		return s.sendConfirmation(ctx, sub)
	case StateActive:
		return s.sendAlreadySubscribed(ctx, sub)
	default:
		return nil
	}
}

// create stores a new PENDING record for addr. If a concurrent Subscribe of
// the same address created one first, it returns that one instead.
func (s *Service) create(ctx context.Context, addr mailaddr.Address, consent ConsentEvidence) (Subscriber, error) {
	id, err := ulid.New(ulid.Timestamp(consent.SignupTime), rand.Reader)
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: new id: %w", err)
	}
	sub := Subscriber{
		ID:         id.String(),
		Email:      addr.Addr,
		State:      StatePending,
		CreateTime: consent.SignupTime,
		UpdateTime: consent.SignupTime,
		Consent:    consent,
	}
	err = s.store.Create(ctx, addr.Key, sub)
	if errors.Is(err, ErrExists) {
		sub, err = s.store.GetByIdentity(ctx, addr.Key)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscription: create subscriber: %w", err)
	}
	return sub, nil
}

func (s *Service) checkSubscribe(req SubscribeRequest) (mailaddr.Address, ConsentEvidence, error) {
	var errs validation.Errors
	addr, err := mailaddr.Parse(req.Email)
	if err != nil {
		errs.Add("email", reason(err))
	}
	version := req.ConsentTextVersion
	if version == "" {
		version = DefaultConsentTextVersion
	}
	if !utf8.ValidString(version) || utf8.RuneCountInString(version) > MaxConsentTextVersionLength || !allPrint(version) {
		errs.Addf("consent_text_version", "must be at most %d printable characters", MaxConsentTextVersionLength)
	}
	client := checkClient(&errs, req.Client)
	if err := errs.Err(); err != nil {
		return mailaddr.Address{}, ConsentEvidence{}, err
	}
	return addr, ConsentEvidence{
		ConsentTextVersion: version,
		SignupTime:         s.clock(),
		SignupIP:           client.IP,
		SignupUserAgent:    client.UserAgent,
	}, nil
}

// checkClient validates and normalises what is known of the client.
func checkClient(errs *validation.Errors, c Client) Client {
	if c.IP != "" {
		ip, err := netip.ParseAddr(c.IP)
		if err != nil || ip.Zone() != "" {
			errs.Add("client_ip", "must be an IPv4 or IPv6 address")
		} else {
			c.IP = ip.String()
		}
	}
	switch {
	case len(c.UserAgent) > MaxUserAgentLength:
		errs.Addf("user_agent", "must be at most %d bytes", MaxUserAgentLength)
	case !utf8.ValidString(c.UserAgent) || strings.IndexFunc(c.UserAgent, unicode.IsControl) >= 0:
		errs.Add("user_agent", "must be UTF-8 text without control characters")
	}
	return c
}

func allPrint(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// reason is the caller-facing text of an address error.
func reason(err error) string {
	var aerr *mailaddr.Error
	if errors.As(err, &aerr) {
		return aerr.Reason
	}
	return "is not a valid email address"
}

// windowKey is the idempotency key of a throttled mail of kind to sub.
func (s *Service) windowKey(kind string, sub Subscriber) string {
	return fmt.Sprintf("%s:%s:%d", kind, sub.ID, s.clock().Unix()/int64(mailWindow/time.Second))
}

func (s *Service) sendConfirmation(ctx context.Context, sub Subscriber) error {
	now := s.clock()
	link, err := s.link("confirm", linktoken.Claims{
		Purpose:      linktoken.Confirm,
		SubscriberID: sub.ID,
		IssuedAt:     now,
		Expiry:       now.Add(s.confirmTTL),
		Epoch:        sub.TokenEpoch,
	})
	if err != nil {
		return err
	}
	err = s.mailer.SendConfirmation(ctx, ConfirmationMail{
		IdempotencyKey: s.windowKey("confirm", sub),
		To:             sub.Email,
		ConfirmURL:     link,
	})
	if err != nil {
		return fmt.Errorf("subscription: send confirmation to %s: %w", sub.ID, err)
	}
	return nil
}

func (s *Service) sendAlreadySubscribed(ctx context.Context, sub Subscriber) error {
	link, err := s.unsubscribeURL(sub)
	if err != nil {
		return err
	}
	err = s.mailer.SendAlreadySubscribed(ctx, AlreadySubscribedMail{
		IdempotencyKey: s.windowKey("already", sub),
		To:             sub.Email,
		UnsubscribeURL: link,
	})
	if err != nil {
		return fmt.Errorf("subscription: send already-subscribed to %s: %w", sub.ID, err)
	}
	return nil
}

// unsubscribeURL is sub's signed, non-expiring unsubscribe link.
func (s *Service) unsubscribeURL(sub Subscriber) (string, error) {
	return s.link("unsubscribe", linktoken.Claims{
		Purpose:      linktoken.Unsubscribe,
		SubscriberID: sub.ID,
		IssuedAt:     s.clock(),
		Epoch:        sub.TokenEpoch,
	})
}

// link returns <PublicURL>/<page>?token=<signed claims>.
func (s *Service) link(page string, c linktoken.Claims) (string, error) {
	tok, err := s.keys.Sign(c)
	if err != nil {
		return "", fmt.Errorf("subscription: sign %s link for %s: %w", c.Purpose, c.SubscriberID, err)
	}
	return s.publicURL + "/" + page + "?token=" + url.QueryEscape(tok), nil
}
