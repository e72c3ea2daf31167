// Package subscription is the subscriber lifecycle: double opt-in sign-up,
// confirmation, preferences, unsubscribe, suppression and erasure, the
// delivery-slot index the digest reads, and the abuse limits on sign-up. It
// knows nothing of gRPC, HTTP or Redis: it declares the Store, Mailer,
// Jobs, Limiter and Catalogue it needs, and adapters provide them.
//
// Lifecycle (docs/subscriber.md has the full table):
//
//	(new) ──Subscribe──▶ PENDING ──Confirm──▶ ACTIVE ──Unsubscribe──▶ UNSUBSCRIBED
//	          │             ▲                                              │
//	          │             └──────────────── Subscribe ◀──────────────────┘
//	          └─ PENDING older than PendingTTL is purged (PurgeExpired)
//
//	any state ──Suppress / RecordDeliveryFailure──▶ SUPPRESSED ──Unsuppress──▶ UNSUBSCRIBED
//	any state ──Erase──▶ (gone; a suppressed address keeps a keyed hash)
//
// SUPPRESSED is final for Subscribe, Confirm and Unsubscribe alike.
//
// The methods, by caller:
//   - readers (pages, public/TOKEN RPCs): Subscribe, Confirm, Unsubscribe,
//     CheckConfirmLink, CheckUnsubscribeLink, GetPreferences,
//     UpdatePreferences, Topics;
//   - operators: Get, GetByEmail, List, Export, Erase, Suppress, Unsuppress,
//     RevokeLinks, Import;
//   - other services: ListDue (digest), RecordDeliveryFailure (sender);
//   - background workers: HandleJob (the mail decisions of Subscribe and the
//     sender cancellations of Unsubscribe), PurgeExpired, DropOldClientData.
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

// ErrRateLimited is wrapped by *LimitError.
var ErrRateLimited = errors.New("subscription: too many requests")

// LimitError is returned when an abuse limit refuses a request.
type LimitError struct {
	// Limit names the limit: "ip", "network", "mailbox" or "global".
	Limit string
	// RetryAfter is when the request would be allowed.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("subscription: %s limit reached; retry after %s", e.Limit, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *LimitError) Unwrap() error { return ErrRateLimited }

// Defaults and limits.
const (
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

// Store keeps subscriber records and their indexes. Implementations must
// make every method atomic: a record and all its indexes (address, state,
// topic, delivery slot, pending expiry) change together or not at all.
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
	// any) and with topic (""= any). Fewer than limit means there are no
	// more: paging relies on it.
	List(ctx context.Context, state State, topic string, afterID string, limit int) ([]Subscriber, error)
	// ListSlot returns up to limit ACTIVE records in id order, after
	// afterID, whose preferences put them in slot. Fewer than limit means
	// there are no more. Only ID, Email, State, TokenEpoch and Preferences
	// need be set: what ListDue reads (a store may leave the rest zero
	// rather than read every due subscriber's consent evidence).
	ListSlot(ctx context.Context, slot Slot, afterID string, limit int) ([]Subscriber, error)
	// Timezones returns every time zone an ACTIVE subscriber has chosen
	// (it may hold a few that no one uses any more).
	Timezones(ctx context.Context) ([]string, error)
	// PendingBefore returns up to limit ids of PENDING records whose
	// sign-up was before t.
	PendingBefore(ctx context.Context, t time.Time, limit int) ([]string, error)
	// Delete removes record id with all its indexes if fn, called with the
	// current record, returns true (atomically, as Update). When
	// keepSuppression is true the address's keyed hash is kept as a
	// suppression marker (see Suppressed). Missing → ErrNotFound.
	Delete(ctx context.Context, id string, fn func(s Subscriber) (del, keepSuppression bool)) (Subscriber, error)
	// Suppressed reports whether identity belongs to an erased address that
	// was suppressed.
	Suppressed(ctx context.Context, identity string) (bool, error)
	// Unsuppress removes identity's suppression marker, if any.
	Unsuppress(ctx context.Context, identity string) error
	// WithClientDataBefore returns up to limit ids, after afterID, of
	// records holding sign-up or confirmation IP/UA collected before t.
	WithClientDataBefore(ctx context.Context, t time.Time, afterID string, limit int) ([]string, error)
}

// Mailer hands transactional mail to the sender. The Send methods are
// idempotent by IdempotencyKey. All wrap ErrMailUnavailable when the sender
// cannot be reached.
type Mailer interface {
	SendConfirmation(ctx context.Context, m ConfirmationMail) error
	SendAlreadySubscribed(ctx context.Context, m AlreadySubscribedMail) error
	// CancelRecipient drops everything still queued for address.
	CancelRecipient(ctx context.Context, address string) error
}

// ConfirmationMail asks a new subscriber to confirm.
type ConfirmationMail struct {
	IdempotencyKey string
	To             string
	ConfirmURL     string
}

// AlreadySubscribedMail tells an active subscriber who signed up again that
// they already are, with a way to manage their preferences or leave.
type AlreadySubscribedMail struct {
	IdempotencyKey string
	To             string
	UnsubscribeURL string
	ManageURL      string
}

// Jobs is the durable queue of work taken off the request path (see
// HandleJob). Push must not return before the job is stored.
type Jobs interface {
	Push(ctx context.Context, j Job) error
}

// JobKind says what a Job asks for.
type JobKind string

// The job kinds.
const (
	// JobSignup decides and sends the mail of a Subscribe.
	JobSignup JobKind = "signup"
	// JobCancel asks the sender to cancel mail queued for an address.
	JobCancel JobKind = "cancel"
)

// Job is one unit of background work.
type Job struct {
	Kind JobKind
	// Signup is set for JobSignup.
	Signup *Signup
	// Email is set for JobCancel.
	Email string
}

// Signup is a validated Subscribe, as queued for HandleJob.
type Signup struct {
	Email       string
	Identity    string
	Consent     ConsentEvidence
	Preferences Preferences
	// SkipMail is set by imports with evidence: the row becomes ACTIVE
	// without a confirmation mail.
	SkipMail bool
	// Active makes a new record ACTIVE (imports with consent evidence).
	Active bool
	// Throttle makes the confirmation mail wait for the global limit
	// (imports without evidence), so a big import cannot flood the sender.
	Throttle bool
}

// Limiter is a shared (all replicas) GCRA rate limiter.
type Limiter interface {
	// Allow takes one unit from the bucket (name, key) under limit and
	// returns 0, or, when the bucket is empty, how long until it is not
	// (taking nothing).
	Allow(ctx context.Context, name, key string, limit Limit) (retryAfter time.Duration, err error)
}

// Limit is a GCRA rate: Rate events per Period, with bursts of up to Burst.
// A zero Rate disables the limit.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// Limits are the abuse limits on Subscribe.
type Limits struct {
	// PerIP and PerNetwork limit sign-ups per client IP and per /24
	// (IPv4) or /64 (IPv6) network.
	PerIP, PerNetwork Limit
	// PerMailbox limits sign-ups (and so confirmation mails) per mailbox,
	// case and +tag ignored.
	PerMailbox Limit
	// Global limits all sign-ups (the confirmation mails they cause) of
	// the whole service.
	Global Limit
}

// DefaultLimits are the limits used when Config.Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		PerIP:      Limit{Rate: 10, Burst: 10, Period: time.Hour},
		PerNetwork: Limit{Rate: 50, Burst: 50, Period: time.Hour},
		PerMailbox: Limit{Rate: 3, Burst: 3, Period: 24 * time.Hour},
		Global:     Limit{Rate: 600, Burst: 600, Period: time.Minute},
	}
}

// Config is what a Service needs.
type Config struct {
	// Store, Mailer, Jobs, Limiter and Catalogue are required.
	Store     Store
	Mailer    Mailer
	Jobs      Jobs
	Limiter   Limiter
	Catalogue Catalogue
	// Keyring signs and verifies link tokens. Required.
	Keyring *linktoken.Keyring
	// PublicURL is the absolute http(s) base URL of the link pages, e.g.
	// https://news.example.com. Required.
	PublicURL string
	// ConfirmTTL is how long a confirmation link works. Required.
	ConfirmTTL time.Duration
	// PendingTTL is how long an unconfirmed PENDING record is kept; 0
	// means 7 days.
	PendingTTL time.Duration
	// ClientDataRetention is how long sign-up and confirmation IP and user
	// agent are kept; 0 means forever.
	ClientDataRetention time.Duration
	// DefaultDeliveryHour (0–23, used as given) and DefaultTimezone (""
	// means "UTC") apply to sign-ups that name none.
	DefaultDeliveryHour int
	DefaultTimezone     string
	// Limits are the abuse limits; zero means DefaultLimits.
	Limits Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics, if set, is told what happens (sign-ups, confirmations,
	// unsubscribes, refusals, bounces).
	Metrics Metrics
}

// Service runs the subscriber lifecycle.
type Service struct {
	store       Store
	mailer      Mailer
	jobs        Jobs
	limiter     Limiter
	catalogue   Catalogue
	keys        *linktoken.Keyring
	publicURL   string
	confirmTTL  time.Duration
	pendingTTL  time.Duration
	retention   time.Duration
	defaultHour int
	defaultTZ   string
	limits      Limits
	now         func() time.Time
	metrics     Metrics
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Mailer == nil || cfg.Keyring == nil || cfg.Jobs == nil || cfg.Limiter == nil || cfg.Catalogue == nil {
		return nil, errors.New("subscription: Store, Mailer, Jobs, Limiter, Catalogue and Keyring are required")
	}
	if cfg.ConfirmTTL <= 0 || cfg.PendingTTL < 0 || cfg.ClientDataRetention < 0 {
		return nil, errors.New("subscription: ConfirmTTL must be positive, PendingTTL and ClientDataRetention not negative")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("subscription: PublicURL %q must be an absolute http(s) URL without query or fragment", cfg.PublicURL)
	}
	s := &Service{
		store:       cfg.Store,
		mailer:      cfg.Mailer,
		jobs:        cfg.Jobs,
		limiter:     cfg.Limiter,
		catalogue:   cfg.Catalogue,
		keys:        cfg.Keyring,
		publicURL:   strings.TrimRight(cfg.PublicURL, "/"),
		confirmTTL:  cfg.ConfirmTTL,
		pendingTTL:  cfg.PendingTTL,
		retention:   cfg.ClientDataRetention,
		defaultHour: cfg.DefaultDeliveryHour,
		defaultTZ:   cfg.DefaultTimezone,
		limits:      cfg.Limits,
		now:         cfg.Now,
		metrics:     cfg.Metrics,
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pendingTTL == 0 {
		s.pendingTTL = 7 * 24 * time.Hour
	}
	if s.defaultHour < 0 || s.defaultHour > 23 {
		return nil, fmt.Errorf("subscription: DefaultDeliveryHour %d is not 0-23", s.defaultHour)
	}
	if s.defaultTZ == "" {
		s.defaultTZ = "UTC"
	}
	if _, err := LoadLocation(s.defaultTZ); err != nil {
		return nil, fmt.Errorf("subscription: DefaultTimezone: %w", err)
	}
	if s.limits == (Limits{}) {
		s.limits = DefaultLimits()
	}
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC().Round(0) }
