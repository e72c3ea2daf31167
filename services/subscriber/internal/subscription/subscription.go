// Package subscription is the subscriber lifecycle: double opt-in sign-up,
// confirmation, unsubscribe, and the lists other services and operators
// read. It knows nothing of gRPC, HTTP or Redis: it declares the Store and
// Mailer it needs, and adapters provide them.
//
// Lifecycle:
//
//	(new) ──Subscribe──▶ PENDING ──Confirm──▶ ACTIVE ──Unsubscribe──▶ UNSUBSCRIBED
//	                        ▲                                              │
//	                        └──────────────── Subscribe ◀──────────────────┘
//
// SUPPRESSED (set by operators and bounces, in later work) is final for
// Subscribe, Confirm and Unsubscribe alike.
package subscription

import (
	"context"
	"crypto/rand"
	"encoding/base64"
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

// Errors. The messages of ErrLinkExpired and ErrMailUnavailable are written
// for the end user.
var (
	// ErrNotFound means no subscriber has the id or address asked for.
	ErrNotFound = errors.New("subscription: subscriber not found")
	// ErrExists is returned by Store.Create when the address already has a
	// record (another sign-up won the race).
	ErrExists = errors.New("subscription: subscriber already exists")
	// ErrLinkExpired means a genuine confirmation link is past its expiry.
	ErrLinkExpired = errors.New("subscription: the confirmation link has expired; subscribe again to get a new one")
	// ErrMailUnavailable means the mail could not be handed to the sender
	// right now; the request may be retried.
	ErrMailUnavailable = errors.New("subscription: the mail service is unavailable; please try again shortly")
)

// Defaults and limits.
const (
	// DefaultConsentTextVersion is recorded when a sign-up names no consent
	// text version.
	DefaultConsentTextVersion = "v1"
	// MaxConsentTextVersionLength is in characters.
	MaxConsentTextVersionLength = 64
	// MaxUserAgentLength is in bytes.
	MaxUserAgentLength = 512

	// DefaultPageSize and MaxPageSize bound List.
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// DefaultDuePageSize and MaxDuePageSize bound ListDue.
	DefaultDuePageSize = 500
	MaxDuePageSize     = 5000

	// mailWindow is the throttle window of confirmation and "already
	// subscribed" mails: their idempotency key changes once per window, so
	// an address gets at most one of each per window however often
	// Subscribe is called.
	mailWindow = 10 * time.Minute
)

// Store keeps subscriber records. Implementations must make every method
// atomic: a record, its address index and its state index change together or
// not at all.
type Store interface {
	// Create stores a new record under identity (the address's identity
	// key) unless identity already has one, in which case it returns
	// ErrExists and stores nothing.
	Create(ctx context.Context, identity string, s Subscriber) error
	// Get returns the record with id, or ErrNotFound.
	Get(ctx context.Context, id string) (Subscriber, error)
	// GetByIdentity returns the record of the address with identity key
	// identity, or ErrNotFound.
	GetByIdentity(ctx context.Context, identity string) (Subscriber, error)
	// Update reads record id, calls fn with it, and, if fn reports a change,
	// writes it back, all atomically (fn may run more than once under
	// contention). An error from fn aborts the update and is returned.
	Update(ctx context.Context, id string, fn func(s *Subscriber) (changed bool, err error)) (Subscriber, error)
	// List returns up to limit records in id order whose id is greater
	// than afterID ("" = from the start), in state (StateUnspecified =
	// any). Fewer than limit means there are no more: paging relies on it.
	List(ctx context.Context, state State, afterID string, limit int) ([]Subscriber, error)
}

// Mailer hands transactional mail to the sender. Both methods are
// idempotent by IdempotencyKey. They wrap ErrMailUnavailable when the
// sender cannot be reached.
type Mailer interface {
	SendConfirmation(ctx context.Context, m ConfirmationMail) error
	SendAlreadySubscribed(ctx context.Context, m AlreadySubscribedMail) error
}

// ConfirmationMail asks a new subscriber to confirm.
type ConfirmationMail struct {
	IdempotencyKey string
	To             string
	ConfirmURL     string
}

// AlreadySubscribedMail tells an active subscriber who signed up again that
// they already are, with a way out.
type AlreadySubscribedMail struct {
	IdempotencyKey string
	To             string
	UnsubscribeURL string
}

// Config is what a Service needs.
type Config struct {
	// Store and Mailer are required.
	Store  Store
	Mailer Mailer
	// Keyring signs and verifies link tokens. Required.
	Keyring *linktoken.Keyring
	// PublicURL is the absolute http(s) base URL of the link pages, e.g.
	// https://news.example.com. Required.
	PublicURL string
	// ConfirmTTL is how long a confirmation link works. Required.
	ConfirmTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs the subscriber lifecycle.
type Service struct {
	store      Store
	mailer     Mailer
	keys       *linktoken.Keyring
	publicURL  string
	confirmTTL time.Duration
	now        func() time.Time
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Mailer == nil || cfg.Keyring == nil {
		return nil, errors.New("subscription: Store, Mailer and Keyring are required")
	}
	if cfg.ConfirmTTL <= 0 {
		return nil, errors.New("subscription: ConfirmTTL must be positive")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("subscription: PublicURL %q must be an absolute http(s) URL without query or fragment", cfg.PublicURL)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		store:      cfg.Store,
		mailer:     cfg.Mailer,
		keys:       cfg.Keyring,
		publicURL:  strings.TrimRight(cfg.PublicURL, "/"),
		confirmTTL: cfg.ConfirmTTL,
		now:        now,
	}, nil
}

func (s *Service) clock() time.Time { return s.now().UTC().Round(0) }

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
