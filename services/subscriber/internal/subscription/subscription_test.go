package subscription_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// subscribe signs addr up on svc and works the job queue with svc, so the
// mail is sent when it returns.
func subscribe(t *testing.T, e *testenv.Env, svc *subscription.Service, addr string) {
	t.Helper()
	defer func() {
		if _, err := e.Jobs.RunOnce(context.Background(), logging.Discard(), svc.HandleJob); err != nil {
			t.Fatal(err)
		}
	}()
	if err := svc.Subscribe(context.Background(), subscription.SubscribeRequest{Email: addr, ConsentTextVersion: "v1", Client: subscription.Client{IP: "192.0.2.1"}}); err != nil {
		t.Fatalf("Subscribe(%q): %v", addr, err)
	}
}

func lastConfirmToken(t *testing.T, e *testenv.Env, addr string) string {
	t.Helper()
	mails := e.MailsTo(addr)
	if len(mails) == 0 {
		t.Fatalf("no mail to %s", addr)
	}
	_, tok := testenv.Link(t, e.PublicURL, mails[len(mails)-1], "confirm")
	return tok
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func isTokenViolation(err error) bool {
	var verr *validation.Error
	return errors.As(err, &verr) && len(verr.Violations) == 1 && verr.Violations[0].Field == "token"
}

func TestKeyRotation(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	subscribe(t, e, e.Service, "old@example.com")
	oldTok := lastConfirmToken(t, e, "old@example.com")

	// Deploy a new key first in the list; the old one stays for verifying.
	newKey := linktoken.Key{ID: "t2", Secret: bytes.Repeat([]byte("n"), 32)}
	rotatedSvc := serviceOn(t, e, mustKeyring(t, newKey, testenv.TestKey()))

	if sub, err := rotatedSvc.Confirm(ctx, oldTok, subscription.Client{}); err != nil || sub.State != subscription.StateActive {
		t.Fatalf("old-key link after rotation: %+v, %v; want active", sub, err)
	}
	subscribe(t, e, rotatedSvc, "new@example.com")
	newTok := lastConfirmToken(t, e, "new@example.com")
	if !strings.HasPrefix(newTok, "t2.") {
		t.Errorf("rotated service signed %q, want key t2", newTok)
	}
	// A replica still on the old keys cannot verify it (it will, once the
	// new key is deployed everywhere before it is made the signing key).
	if _, err := e.Service.Confirm(ctx, newTok, subscription.Client{}); !isTokenViolation(err) {
		t.Errorf("new-key link on an old-key service: %v, want a token violation", err)
	}
	// After retiring the old key, its links stop working.
	retired := serviceOn(t, e, mustKeyring(t, newKey))
	if _, err := retired.CheckConfirmLink(ctx, oldTok); !isTokenViolation(err) {
		t.Errorf("old-key link after retiring the key: %v, want a token violation", err)
	}
}

func mustKeyring(t *testing.T, keys ...linktoken.Key) *linktoken.Keyring {
	t.Helper()
	kr, err := linktoken.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// serviceOn returns a second Service over e's store, mailer and clock but
// with other keys, as another replica mid-rotation would be.
func serviceOn(t *testing.T, e *testenv.Env, kr *linktoken.Keyring) *subscription.Service {
	t.Helper()
	svc, err := subscription.New(subscription.Config{
		Store:               e.Store,
		Mailer:              e.Mailer,
		Jobs:                e.Jobs,
		Limiter:             e.Limiter,
		Catalogue:           testenv.Topics(),
		Keyring:             kr,
		PublicURL:           e.PublicURL,
		ConfirmTTL:          testenv.ConfirmTTL,
		DefaultDeliveryHour: 7,
		Limits:              testenv.GenerousLimits(),
		Now:                 e.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestSubscribeAgainAfterUnsubscribing(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	subscribe(t, e, e.Service, "ada@example.com")
	if _, err := e.Service.Confirm(ctx, lastConfirmToken(t, e, "ada@example.com"), subscription.Client{IP: "192.0.2.2"}); err != nil {
		t.Fatal(err)
	}
	due, err := e.Service.ListDue(ctx, subscription.ListDueRequest{DueTime: sevenUTC})
	if err != nil {
		t.Fatal(err)
	}
	unsubTok := tokenOf(t, due.Subscribers[0].UnsubscribeURL)
	if _, err := e.Service.Unsubscribe(ctx, unsubTok, subscription.ChannelOneClick); err != nil {
		t.Fatal(err)
	}

	e.Clock.Advance(24 * time.Hour)
	if err := e.Service.Subscribe(ctx, subscription.SubscribeRequest{Email: "ada@example.com", ConsentTextVersion: "v2", Client: subscription.Client{IP: "192.0.2.3", UserAgent: "Again"}}); err != nil {
		t.Fatal(err)
	}
	e.Work(t)
	sub, err := e.Service.GetByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := testenv.StartTime().Add(24 * time.Hour)
	want := subscription.ConsentEvidence{ConsentTextVersion: "v2", SignupTime: now, SignupIP: "192.0.2.3", SignupUserAgent: "Again", Source: "subscribe"}
	if sub.State != subscription.StatePending {
		t.Errorf("state = %v, want pending", sub.State)
	}
	if diff := cmp.Diff(want, sub.Consent); diff != "" {
		t.Errorf("consent evidence is not the new sign-up's (-want +got):\n%s", diff)
	}
	if n := len(e.MailsTo("ada@example.com")); n != 2 {
		t.Errorf("%d mails, want two confirmations", n)
	}
	// The new confirmation works.
	if sub, err := e.Service.Confirm(ctx, lastConfirmToken(t, e, "ada@example.com"), subscription.Client{}); err != nil || sub.State != subscription.StateActive {
		t.Errorf("confirm after re-subscribing: %+v, %v", sub, err)
	}
}

func TestRevokeLinks(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	subscribe(t, e, e.Service, "ada@example.com")
	sub, err := e.Service.Confirm(ctx, lastConfirmToken(t, e, "ada@example.com"), subscription.Client{})
	if err != nil {
		t.Fatal(err)
	}
	due, err := e.Service.ListDue(ctx, subscription.ListDueRequest{DueTime: sevenUTC})
	if err != nil {
		t.Fatal(err)
	}
	oldTok := tokenOf(t, due.Subscribers[0].UnsubscribeURL)
	if _, err := e.Service.RevokeLinks(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{
		"check":       func() error { _, err := e.Service.CheckUnsubscribeLink(ctx, oldTok); return err },
		"unsubscribe": func() error { _, err := e.Service.Unsubscribe(ctx, oldTok, subscription.ChannelAPI); return err },
	} {
		if err := check(); !isTokenViolation(err) {
			t.Errorf("%s with a revoked link: %v, want a token violation", name, err)
		}
	}
	if got, _ := e.Service.Get(ctx, sub.ID); got.State != subscription.StateActive {
		t.Errorf("state = %v after a revoked unsubscribe, want active", got.State)
	}
	due, err = e.Service.ListDue(ctx, subscription.ListDueRequest{DueTime: sevenUTC})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Unsubscribe(ctx, tokenOf(t, due.Subscribers[0].UnsubscribeURL), subscription.ChannelAPI); err != nil {
		t.Errorf("a link issued after revoking: %v", err)
	}
	if _, err := e.Service.RevokeLinks(ctx, "01J0000000000000000000000Z"); !errors.Is(err, subscription.ErrNotFound) {
		t.Errorf("RevokeLinks of an unknown id = %v, want ErrNotFound", err)
	}
}

func TestCheckLinksChangeNothing(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	subscribe(t, e, e.Service, "ada@example.com")
	tok := lastConfirmToken(t, e, "ada@example.com")
	before := e.Dump(t)
	sub, err := e.Service.CheckConfirmLink(ctx, tok)
	if err != nil || sub.Email != "ada@example.com" {
		t.Fatalf("CheckConfirmLink = %+v, %v", sub, err)
	}
	if _, err := e.Service.CheckUnsubscribeLink(ctx, tok); !isTokenViolation(err) {
		t.Errorf("CheckUnsubscribeLink(confirm token) = %v, want a token violation", err)
	}
	if diff := cmp.Diff(before, e.Dump(t)); diff != "" {
		t.Errorf("checking links changed Redis (-before +after):\n%s", diff)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	base := subscription.Config{
		Store: e.Store, Mailer: e.Mailer, Jobs: e.Jobs, Limiter: e.Limiter, Catalogue: testenv.Topics(),
		Keyring: e.Keyring, PublicURL: "https://example.com", ConfirmTTL: time.Hour,
	}
	for name, change := range map[string]func(*subscription.Config){
		"no store":         func(c *subscription.Config) { c.Store = nil },
		"no mailer":        func(c *subscription.Config) { c.Mailer = nil },
		"no keyring":       func(c *subscription.Config) { c.Keyring = nil },
		"no jobs":          func(c *subscription.Config) { c.Jobs = nil },
		"no limiter":       func(c *subscription.Config) { c.Limiter = nil },
		"no catalogue":     func(c *subscription.Config) { c.Catalogue = nil },
		"bad default hour": func(c *subscription.Config) { c.DefaultDeliveryHour = 24 },
		"bad default zone": func(c *subscription.Config) { c.DefaultTimezone = "Nowhere/Land" },
		"zero TTL":         func(c *subscription.Config) { c.ConfirmTTL = 0 },
		"relative URL":     func(c *subscription.Config) { c.PublicURL = "/x" },
		"URL with query":   func(c *subscription.Config) { c.PublicURL = "https://example.com/?a=1" },
		"non-http scheme":  func(c *subscription.Config) { c.PublicURL = "javascript:alert(1)" },
		"URL with a frag.": func(c *subscription.Config) { c.PublicURL = "https://example.com/#x" },
	} {
		cfg := base
		change(&cfg)
		if _, err := subscription.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := subscription.New(base); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// sevenUTC is inside the default delivery slot (07:00 UTC) of the test day.
var sevenUTC = time.Date(2026, 6, 12, 7, 30, 0, 0, time.UTC)
