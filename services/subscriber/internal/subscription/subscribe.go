package subscription

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
)

// Subscribe signs req.Email up. A nil error looks the same whatever the
// address's state, and the request path does the same work for every
// address: validate, check the abuse limits (which do not depend on whether
// the address is known), and queue the sign-up. Nothing on this path reads
// the address's record, so neither the answer nor its timing says whether
// the address is known. HandleJob later takes the decision:
//   - new: a PENDING record is created and a confirmation mail sent;
//   - UNSUBSCRIBED: back to PENDING with fresh consent evidence and
//     preferences, and a confirmation mail;
//   - PENDING: the confirmation mail is sent again; consent evidence and
//     preferences stay those of the first sign-up (a third party
//     re-submitting an address must not overwrite them);
//   - ACTIVE: an "already subscribed — manage your preferences" mail;
//   - SUPPRESSED (or erased while suppressed): nothing.
//
// Over a limit, the error is a *LimitError (ErrRateLimited).
func (s *Service) Subscribe(ctx context.Context, req SubscribeRequest) error {
	signup, err := s.checkSubscribe(ctx, req)
	if err != nil {
		return err
	}
	if err := s.checkLimits(ctx, req.Client.IP, signup.Identity); err != nil {
		return err
	}
	if err := s.jobs.Push(ctx, Job{Kind: JobSignup, Signup: &signup}); err != nil {
		return fmt.Errorf("subscription: queue sign-up: %w", err)
	}
	return nil
}

// checkLimits applies the per-IP, per-network, per-mailbox and global
// limits, in that order (the global one last, so a refused client does not
// use it up).
func (s *Service) checkLimits(ctx context.Context, ip, identity string) error {
	type check struct {
		name, key string
		limit     Limit
	}
	var checks []check
	if a, err := netip.ParseAddr(ip); err == nil {
		bits := 24
		if a.Is6() && !a.Is4In6() {
			bits = 64
		}
		net, _ := a.Unmap().Prefix(bits)
		checks = append(checks, check{"ip", a.Unmap().String(), s.limits.PerIP}, check{"network", net.String(), s.limits.PerNetwork})
	}
	checks = append(checks,
		check{"mailbox", MailboxKey(identity), s.limits.PerMailbox},
		check{"global", "all", s.limits.Global})
	for _, c := range checks {
		if c.limit.Rate <= 0 {
			continue
		}
		wait, err := s.limiter.Allow(ctx, c.name, c.key, c.limit)
		if err != nil {
			return fmt.Errorf("subscription: %s limit: %w", c.name, err)
		}
		if wait > 0 {
			s.metrics.RateLimited(c.name)
			return &LimitError{Limit: c.name, RetryAfter: wait}
		}
	}
	return nil
}

// MailboxKey is the key of the per-mailbox limit: the identity key (lower
// case) without a "+tag" in the local part, so victim+1@x and Victim@x are
// one mailbox.
func MailboxKey(identity string) string {
	at := strings.LastIndexByte(identity, '@')
	if at < 0 {
		return identity
	}
	local, domain := identity[:at], identity[at:]
	if plus := strings.IndexByte(local, '+'); plus > 0 {
		local = local[:plus]
	}
	return strings.ToLower(local + domain)
}

// HandleJob does one job of the background queue. It is idempotent: a job
// handled twice (after a crash) has the effect of one. An error means the
// job should be retried later.
func (s *Service) HandleJob(ctx context.Context, j Job) error {
	switch j.Kind {
	case JobSignup:
		if j.Signup == nil {
			return errors.New("subscription: signup job without sign-up")
		}
		return s.handleSignup(ctx, *j.Signup)
	case JobCancel:
		if err := s.mailer.CancelRecipient(ctx, j.Email); err != nil {
			return fmt.Errorf("subscription: cancel queued mail: %w", err)
		}
		return nil
	}
	return fmt.Errorf("subscription: unknown job kind %q", j.Kind)
}

// handleSignup does a sign-up job; it is counted by the address's state
// once it succeeds (a job retried after a failure counts once).
func (s *Service) handleSignup(ctx context.Context, su Signup) (err error) {
	result := ""
	defer func() {
		if err == nil && result != "" {
			s.metrics.Signup(result)
		}
	}()
	sub, err := s.store.GetByIdentity(ctx, su.Identity)
	if err == nil {
		result = sub.State.String()
	}
	switch {
	case errors.Is(err, ErrNotFound):
		suppressed, err := s.store.Suppressed(ctx, su.Identity)
		if err != nil {
			return fmt.Errorf("subscription: sign-up: %w", err)
		}
		if suppressed {
			result = StateSuppressed.String()
			return nil
		}
		var created bool
		sub, created, err = s.create(ctx, su)
		if err != nil {
			return err
		}
		result = sub.State.String()
		if created {
			result = "new"
		}
	case err != nil:
		return fmt.Errorf("subscription: sign-up: %w", err)
	case su.Active:
		// An import never overrides what the address did here (it may
		// have unsubscribed).
		return nil
	case sub.State == StateUnsubscribed:
		sub, err = s.store.Update(ctx, sub.ID, func(cur *Subscriber) (bool, error) {
			if cur.State != StateUnsubscribed {
				return false, nil // changed under us; act on what it is now
			}
			cur.State = StatePending
			cur.Consent = su.Consent
			cur.Preferences = su.Preferences
			cur.UpdateTime = su.Consent.SignupTime
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("subscription: sign up %s again: %w", sub.ID, err)
		}
	}
	if su.SkipMail {
		return nil
	}
	switch sub.State {
	case StatePending:
		if su.Throttle && s.limits.Global.Rate > 0 {
			wait, err := s.limiter.Allow(ctx, "global", "all", s.limits.Global)
			if err != nil {
				return fmt.Errorf("subscription: global limit: %w", err)
			}
			if wait > 0 {
				return &LimitError{Limit: "global", RetryAfter: wait} // the job is retried later
			}
		}
		return s.sendConfirmation(ctx, sub)
	case StateActive:
		return s.sendAlreadySubscribed(ctx, sub)
	default:
		return nil
	}
}

// create stores a new record for a sign-up and reports true. If a
// concurrent sign-up of the same address created one first, it returns that
// one instead, and false.
func (s *Service) create(ctx context.Context, su Signup) (Subscriber, bool, error) {
	id, err := ulid.New(ulid.Timestamp(su.Consent.SignupTime), rand.Reader)
	if err != nil {
		return Subscriber{}, false, fmt.Errorf("subscription: new id: %w", err)
	}
	sub := Subscriber{
		ID:          id.String(),
		Email:       su.Email,
		State:       StatePending,
		CreateTime:  su.Consent.SignupTime,
		UpdateTime:  su.Consent.SignupTime,
		Consent:     su.Consent,
		Preferences: su.Preferences,
	}
	if su.Active {
		sub.State = StateActive
	}
	err = s.store.Create(ctx, su.Identity, sub)
	if errors.Is(err, ErrExists) {
		sub, err = s.store.GetByIdentity(ctx, su.Identity)
		if err != nil {
			return Subscriber{}, false, fmt.Errorf("subscription: create subscriber: %w", err)
		}
		return sub, false, nil
	}
	if err != nil {
		return Subscriber{}, false, fmt.Errorf("subscription: create subscriber: %w", err)
	}
	return sub, true, nil
}

func (s *Service) checkSubscribe(ctx context.Context, req SubscribeRequest) (Signup, error) {
	var errs validation.Errors
	addr, err := mailaddr.Parse(req.Email)
	if err != nil {
		errs.Add("email", reason(err))
	}
	checkConsentVersion(&errs, "consent_text_version", req.ConsentTextVersion)
	client := checkClient(&errs, req.Client)
	prefs, err := s.checkPreferences(ctx, &errs, "", prefInput{
		topics: req.Topics, keywords: req.Keywords, frequency: req.Frequency, weeklyDay: req.WeeklyDay,
		deliveryHour: req.DeliveryHour, timezone: req.Timezone, locale: req.Locale,
	})
	if err != nil {
		return Signup{}, err
	}
	if err := errs.Err(); err != nil {
		return Signup{}, err
	}
	return Signup{
		Email:    addr.Addr,
		Identity: addr.Key,
		Consent: ConsentEvidence{
			ConsentTextVersion: req.ConsentTextVersion,
			SignupTime:         s.clock(),
			SignupIP:           client.IP,
			SignupUserAgent:    client.UserAgent,
			Source:             "subscribe",
		},
		Preferences: prefs,
	}, nil
}

// checkConsentVersion requires a consent text version: consent to an
// unnamed text is no evidence.
func checkConsentVersion(errs *validation.Errors, field, v string) {
	switch {
	case v == "":
		errs.Add(field, "is required: the version of the consent text the subscriber was shown")
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxConsentTextVersionLength || !allPrint(v):
		errs.Addf(field, "must be at most %d printable characters", MaxConsentTextVersionLength)
	}
}

// checkClient validates and normalises what is known of the client.
func checkClient(errs *validation.Errors, c Client) Client {
	if c.IP != "" {
		ip, err := netip.ParseAddr(c.IP)
		if err != nil || ip.Zone() != "" {
			errs.Add("client_ip", "must be an IPv4 or IPv6 address")
		} else {
			c.IP = ip.Unmap().String()
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
	unsub, err := s.unsubscribeURL(sub)
	if err != nil {
		return err
	}
	manage, err := s.manageURL(sub)
	if err != nil {
		return err
	}
	err = s.mailer.SendAlreadySubscribed(ctx, AlreadySubscribedMail{
		IdempotencyKey: s.windowKey("already", sub),
		To:             sub.Email,
		UnsubscribeURL: unsub,
		ManageURL:      manage,
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

// manageURL is sub's signed, non-expiring preferences link.
func (s *Service) manageURL(sub Subscriber) (string, error) {
	return s.link("preferences", linktoken.Claims{
		Purpose:      linktoken.Manage,
		SubscriberID: sub.ID,
		IssuedAt:     s.clock(),
		Epoch:        sub.TokenEpoch,
	})
}

// link returns <PublicURL>/<page>?token=<signed claims>, built in one
// buffer (ListDue makes two per due subscriber). The token needs no query
// escaping: it consists of URL-unreserved characters only.
func (s *Service) link(page string, c linktoken.Claims) (string, error) {
	b := make([]byte, 0, len(s.publicURL)+len(page)+len("/?token=")+160)
	b = append(b, s.publicURL...)
	b = append(b, '/')
	b = append(b, page...)
	b = append(b, "?token="...)
	b, err := s.keys.AppendSign(b, c)
	if err != nil {
		return "", fmt.Errorf("subscription: sign %s link for %s: %w", c.Purpose, c.SubscriberID, err)
	}
	return string(b), nil
}
