// Package subscribertest is the one in-memory fake of the subscriber
// service for other modules' tests (the digest reads ListDueSubscribers,
// the sender reports RecordDeliveryFailure). It is the real gRPC adapter and
// the real subscription.Service — so every request is validated, every
// state changes and every due slot is computed exactly as the subscriber
// does — over an in-memory store, with no abuse limits, and with the
// background jobs done at once. Mails it would send are kept, not sent: read
// them with Mails.
//
// Start serves it over real gRPC on a loopback port behind the platform
// server with the subscriber's own auth policy; New gives the bare
// subscriberv1.SubscriberServiceServer for in-process use. AddActive makes
// an ACTIVE subscriber through the real sign-up and confirmation.
package subscribertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/services/subscriber/internal/config"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/memstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// AdminToken is the operator token of a fake started with Start.
const AdminToken = "subscribertest-admin-token"

// PublicURL is the base of the links the fake signs.
const PublicURL = "http://127.0.0.1:8081"

// ConsentTextVersion is what AddActive records as consent.
const ConsentTextVersion = "subscribertest-v1"

// Mail is one transactional mail the subscriber would have sent.
type Mail struct {
	// Kind is "confirmation" or "already-subscribed".
	Kind string
	To   string
	// URL is the confirm link (confirmation) or the manage link
	// (already-subscribed).
	URL string
}

// Fake is an in-memory subscriber service. Use New or Start.
type Fake struct {
	subscriberv1.SubscriberServiceServer

	svc   *subscription.Service
	store *memstore.Store
	addr  string

	mu        sync.Mutex
	now       time.Time // zero: the real clock
	mails     []Mail
	cancelled []string
}

// Topics is the catalogue the fake validates topics against: the ids of the
// subscriber's built-in default catalogue (config.DefaultTopics).
func Topics() []string {
	var ids []string
	for _, t := range config.DefaultTopics() {
		ids = append(ids, t.ID)
	}
	return ids
}

// New returns a fake that is not served; call its methods directly.
func New() *Fake {
	f := &Fake{store: memstore.New()}
	keyring, err := linktoken.NewKeyring([]linktoken.Key{{ID: "st", Secret: bytes.Repeat([]byte("s"), 32)}})
	if err != nil {
		panic(err) // a constant key: cannot fail
	}
	cat := subscription.StaticCatalogue(config.DefaultTopics())
	f.svc, err = subscription.New(subscription.Config{
		Store:               f.store,
		Mailer:              (*mailer)(f),
		Jobs:                (*jobs)(f),
		Limiter:             noLimits{},
		Catalogue:           cat,
		Keyring:             keyring,
		PublicURL:           PublicURL,
		ConfirmTTL:          7 * 24 * time.Hour,
		DefaultDeliveryHour: 7,
		Now:                 f.clock,
	})
	if err != nil {
		panic(err) // constant configuration: cannot fail
	}
	f.SubscriberServiceServer = grpcapi.NewServer(f.svc)
	return f
}

// Start serves a new fake over gRPC on a loopback port until t ends. It
// accepts serviceToken for INTERNAL calls and AdminToken for OPERATOR
// calls, with the subscriber's own per-RPC policy.
func Start(t testing.TB, serviceToken string) *Fake {
	t.Helper()
	f := New()
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: AdminToken, Service: serviceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	subscriberv1.RegisterSubscriberServiceServer(srv.GRPC, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscribertest: %v", err)
		}
	})
	return f
}

// Addr is the host:port a fake from Start listens on ("" for New).
func (f *Fake) Addr() string { return f.addr }

// SetNow fixes the fake's clock (zero: the real clock again). Sign-up
// times, link issue times and ListDueSubscribers without due_time use it.
func (f *Fake) SetNow(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

func (f *Fake) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.now.IsZero() {
		return time.Now()
	}
	return f.now
}

// AddActive subscribes email with prefs (nil: the defaults — daily, 07:00
// UTC, no topics) and confirms it, through the real Subscribe and
// ConfirmSubscription, and returns the subscriber. Invalid input fails t
// with the service's own field violations.
func (f *Fake) AddActive(t testing.TB, email string, prefs *subscriberv1.Preferences) *subscriberv1.Subscriber {
	t.Helper()
	ctx := context.Background()
	req := &subscriberv1.SubscribeRequest{Email: email, ConsentTextVersion: ConsentTextVersion}
	if prefs != nil {
		req.Topics, req.Keywords = prefs.GetTopics(), prefs.GetKeywords()
		req.Frequency, req.WeeklyDay = prefs.GetFrequency(), prefs.GetWeeklyDay()
		h := prefs.GetDeliveryHour()
		req.DeliveryHour = &h
		req.Timezone, req.Locale = prefs.GetTimezone(), prefs.GetLocale()
	}
	if _, err := f.Subscribe(ctx, req); err != nil {
		t.Fatalf("subscribertest: Subscribe(%q): %v", email, err)
	}
	var confirm string
	for _, m := range f.Mails() {
		if m.To == email && m.Kind == "confirmation" {
			confirm = m.URL
		}
	}
	if confirm == "" {
		t.Fatalf("subscribertest: no confirmation mail for %q (already subscribed or suppressed?)", email)
	}
	u, err := url.Parse(confirm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ConfirmSubscription(ctx, &subscriberv1.ConfirmSubscriptionRequest{Token: u.Query().Get("token")}); err != nil {
		t.Fatalf("subscribertest: confirm %q: %v", email, err)
	}
	res, err := f.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetSubscriber()
}

// Mails returns the transactional mails the fake would have sent, oldest
// first.
func (f *Fake) Mails() []Mail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mails)
}

// Cancelled returns the addresses whose queued mail the subscriber asked
// the sender to cancel (after an unsubscribe or suppression), in order.
func (f *Fake) Cancelled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cancelled)
}

// mailer keeps what would be sent.
type mailer Fake

func (m *mailer) SendConfirmation(_ context.Context, c subscription.ConfirmationMail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, Mail{Kind: "confirmation", To: c.To, URL: c.ConfirmURL})
	return nil
}

func (m *mailer) SendAlreadySubscribed(_ context.Context, c subscription.AlreadySubscribedMail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, Mail{Kind: "already-subscribed", To: c.To, URL: c.ManageURL})
	return nil
}

func (m *mailer) CancelRecipient(_ context.Context, addr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelled = append(m.cancelled, addr)
	return nil
}

// jobs does each job at once, on the caller's goroutine.
type jobs Fake

func (j *jobs) Push(ctx context.Context, job subscription.Job) error {
	if err := j.svc.HandleJob(ctx, job); err != nil {
		return fmt.Errorf("subscribertest: job %s: %w", job.Kind, err)
	}
	return nil
}

// noLimits allows everything.
type noLimits struct{}

func (noLimits) Allow(context.Context, string, string, subscription.Limit) (time.Duration, error) {
	return 0, nil
}
