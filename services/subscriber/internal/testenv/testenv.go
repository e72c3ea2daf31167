// Package testenv assembles the subscriber service's real parts for tests:
// a private redis-server, the Redis store, the fake sender over real gRPC
// with the real peers.Sender client, real link keys, and the domain service on
// a clock the test controls.
package testenv

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/peers"
	"github.com/paperroute/paperroute/services/subscriber/internal/redisstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Tokens the test servers accept.
const (
	AdminToken   = "test-admin-token"
	ServiceToken = "test-service-token"
)

// ConfirmTTL is the confirmation link lifetime in test environments.
const ConfirmTTL = 168 * time.Hour

// StartTime is the initial time of every test clock: a fixed instant in
// the middle of a 10-minute mail window.
func StartTime() time.Time { return time.Date(2026, 6, 12, 9, 3, 0, 0, time.UTC) }

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Env is one test's subscriber service, minus its gRPC and HTTP faces.
type Env struct {
	Redis        *redistest.Server
	RDB          redis.UniversalClient
	Store        *redisstore.Store
	Sender       *sendertest.Fake
	Mailer       subscription.Mailer
	Clock        *Clock
	Keys         []linktoken.Key
	Keyring      *linktoken.Keyring
	EmailHashKey []byte
	Service      *subscription.Service
	PublicURL    string
	Jobs         *redisstore.Jobs
	Limiter      *redisstore.Limiter
}

// Options change what New builds.
type Options struct {
	// PublicURL is the base of links; default http://127.0.0.1:8081.
	PublicURL string
	// Keys are the link keys; default one fixed test key.
	Keys []linktoken.Key
	// Limits are the abuse limits; zero means generous ones that tests
	// not about limits never reach.
	Limits subscription.Limits
	// ClientDataRetention is passed to the service.
	ClientDataRetention time.Duration
}

// Topics is the test topic catalogue.
func Topics() subscription.StaticCatalogue {
	return subscription.StaticCatalogue{
		{ID: "llm", Label: "Large language models"},
		{ID: "rl", Label: "Reinforcement learning"},
		{ID: "vision", Label: "Computer vision"},
	}
}

// GenerousLimits are the default limits of a test Env.
func GenerousLimits() subscription.Limits {
	l := subscription.Limit{Rate: 100000, Burst: 100000, Period: time.Minute}
	return subscription.Limits{PerIP: l, PerNetwork: l, PerMailbox: l, Global: l}
}

// TestKey is the default link key.
func TestKey() linktoken.Key {
	return linktoken.Key{ID: "t1", Secret: bytes.Repeat([]byte("k"), 32)}
}

// New builds an Env for t.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.PublicURL == "" {
		opts.PublicURL = "http://127.0.0.1:8081"
	}
	if opts.Keys == nil {
		opts.Keys = []linktoken.Key{TestKey()}
	}
	e := &Env{
		Redis:        redistest.Start(t, redistest.WithoutAppendOnly()),
		Sender:       sendertest.Start(t, ServiceToken),
		Clock:        &Clock{now: StartTime()},
		Keys:         opts.Keys,
		EmailHashKey: bytes.Repeat([]byte("h"), 32),
		PublicURL:    opts.PublicURL,
	}
	e.RDB = e.Redis.Client()
	e.Store = redisstore.New(e.RDB, e.EmailHashKey)
	var err error
	if e.Keyring, err = linktoken.NewKeyring(e.Keys); err != nil {
		t.Fatal(err)
	}
	conn, err := grpcclient.New(e.Sender.Addr(), ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if e.Mailer, err = peers.NewSender(senderv1.NewSenderServiceClient(conn), ConfirmTTL); err != nil {
		t.Fatal(err)
	}
	if opts.Limits == (subscription.Limits{}) {
		opts.Limits = GenerousLimits()
	}
	e.Jobs = redisstore.NewJobs(e.RDB, "test")
	e.Jobs.RetryAfter = 0 // Work retries failed jobs at once
	e.Limiter = redisstore.NewLimiter(e.RDB, e.EmailHashKey)
	e.Service, err = subscription.New(subscription.Config{
		Store:               e.Store,
		Mailer:              e.Mailer,
		Jobs:                e.Jobs,
		Limiter:             e.Limiter,
		Catalogue:           Topics(),
		Keyring:             e.Keyring,
		PublicURL:           e.PublicURL,
		ConfirmTTL:          ConfirmTTL,
		DefaultDeliveryHour: 7,
		Limits:              opts.Limits,
		ClientDataRetention: opts.ClientDataRetention,
		Now:                 e.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// SubKeys returns every Redis key under the service's prefix, sorted.
func (e *Env) SubKeys(t testing.TB) []string {
	t.Helper()
	keys, err := e.RDB.Keys(context.Background(), "sub:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// Dump returns every key under the prefix with its value, to check that
// nothing changed.
func (e *Env) Dump(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range e.SubKeys(t) {
		v, err := e.RDB.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// SetState puts subscriber id in state directly through the store, as
// later work (operators, bounces) will.
func (e *Env) SetState(t testing.TB, id string, state subscription.State) {
	t.Helper()
	_, err := e.Store.Update(context.Background(), id, func(s *subscription.Subscriber) (bool, error) {
		s.State = state
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// MailsTo returns the accepted mails to addr.
func (e *Env) MailsTo(addr string) []sendertest.Mail {
	var out []sendertest.Mail
	for _, m := range e.Sender.Mails() {
		if m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

// Link returns the first <publicURL>/<page>?token=… link in the mail's text
// part, and its token.
func Link(t testing.TB, publicURL string, m sendertest.Mail, page string) (link, token string) {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(publicURL+"/"+page+"?token=") + `[A-Za-z0-9_.%-]+`)
	link = re.FindString(m.Text)
	if link == "" {
		t.Fatalf("no %s link in mail %q:\n%s", page, m.Subject, m.Text)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token = u.Query().Get("token")
	if !strings.Contains(m.HTML, link) {
		t.Errorf("HTML part of %q lacks the link %s", m.Subject, link)
	}
	return link, token
}

// Work does every job waiting in the queue now (the mail decisions of
// Subscribe, sender cancellations) and returns how many succeeded.
func (e *Env) Work(t testing.TB) int {
	t.Helper()
	n, err := e.Jobs.RunOnce(context.Background(), logging.Discard(), e.Service.HandleJob)
	if err != nil {
		t.Fatalf("work jobs: %v", err)
	}
	return n
}

// Subscribe calls Service.Subscribe with a consent text version and works
// the queue, so the mail decision is taken before it returns.
func (e *Env) Subscribe(t testing.TB, req subscription.SubscribeRequest) {
	t.Helper()
	if req.ConsentTextVersion == "" {
		req.ConsentTextVersion = "v1"
	}
	if err := e.Service.Subscribe(context.Background(), req); err != nil {
		t.Fatalf("Subscribe(%q): %v", req.Email, err)
	}
	e.Work(t)
}
