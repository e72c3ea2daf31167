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
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

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
