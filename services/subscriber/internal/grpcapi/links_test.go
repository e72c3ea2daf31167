package grpcapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

func TestConfirmSubscription(t *testing.T) {
	h := start(t)
	tok := h.confirmToken(t, "ada@example.com")
	h.Clock.Advance(time.Hour)
	res, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok, ClientIp: "2001:db8::1", UserAgent: "Mail/2"})
	if err != nil {
		t.Fatal(err)
	}
	want := &subscriberv1.ConfirmSubscriptionResponse{Email: "ada@example.com", State: subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("ConfirmSubscription mismatch (-want +got):\n%s", diff)
	}
	sub := h.get(t, "ada@example.com")
	signup := timestamppb.New(testenv.StartTime())
	confirmed := timestamppb.New(testenv.StartTime().Add(time.Hour))
	wantSub := &subscriberv1.Subscriber{
		Id:         sub.GetId(),
		Email:      "ada@example.com",
		State:      subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE,
		CreateTime: signup,
		UpdateTime: confirmed,
		Consent: &subscriberv1.ConsentEvidence{
			ConsentTextVersion: "v1",
			SignupTime:         signup,
			SignupIp:           "192.0.2.7",
			SignupUserAgent:    "TestBrowser/1.0",
			ConfirmTime:        confirmed,
			ConfirmIp:          "2001:db8::1",
			ConfirmUserAgent:   "Mail/2",
			Source:             "subscribe",
		},
		Preferences: &subscriberv1.Preferences{
			Frequency: subscriberv1.Frequency_FREQUENCY_DAILY, DeliveryHour: 7, Timezone: "UTC", Locale: "en",
		},
	}
	if diff := cmp.Diff(wantSub, sub, protocmp.Transform()); diff != "" {
		t.Errorf("subscriber mismatch (-want +got):\n%s", diff)
	}

	t.Run("again is idempotent", func(t *testing.T) {
		h.Clock.Advance(time.Hour)
		before := h.Dump(t)
		res, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE {
			t.Errorf("state = %v, want ACTIVE", res.GetState())
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("second confirm changed Redis (-before +after):\n%s", diff)
		}
	})
	t.Run("unsubscribed is not re-activated", func(t *testing.T) {
		h.SetState(t, sub.GetId(), subscription.StateUnsubscribed)
		res, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED {
			t.Errorf("state = %v, want UNSUBSCRIBED", res.GetState())
		}
	})
	t.Run("suppressed is not re-activated", func(t *testing.T) {
		h.SetState(t, sub.GetId(), subscription.StateSuppressed)
		res, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED {
			t.Errorf("state = %v, want SUPPRESSED", res.GetState())
		}
	})
}

func TestConfirmSubscriptionBadTokens(t *testing.T) {
	h := start(t)
	tok := h.confirmToken(t, "ada@example.com")
	sub := h.get(t, "ada@example.com")
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	unsubTok := unsubscribeToken(t, h, sub.GetId(), 0)
	unknownKid := "zz." + parts[1] + "." + parts[2]

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "hello world"},
		{"truncated", tok[:len(tok)/2]},
		{"forged signature", forged},
		{"unknown kid", unknownKid},
		{"unsubscribe token", unsubTok},
		{"oversized 100 KB", strings.Repeat("a", 100<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Dump(t)
			_, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tt.token})
			wantViolations(t, err, "token")
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("bad client fields", func(t *testing.T) {
		_, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok, ClientIp: "not-ip", UserAgent: strings.Repeat("x", 600)})
		wantViolations(t, err, "client_ip", "user_agent")
	})
	t.Run("expired", func(t *testing.T) {
		h.Clock.Advance(testenv.ConfirmTTL)
		before := h.Dump(t)
		_, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok})
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(status.Convert(err).Message(), "subscribe again") {
			t.Errorf("message %q does not say what to do", status.Convert(err).Message())
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("Redis changed (-before +after):\n%s", diff)
		}
	})
	t.Run("revoked by epoch bump", func(t *testing.T) {
		h2 := start(t)
		tok := h2.confirmToken(t, "bob@example.com")
		id := h2.get(t, "bob@example.com").GetId()
		if _, err := h2.Service.RevokeLinks(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		_, err := h2.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok})
		wantViolations(t, err, "token")
		if got := h2.get(t, "bob@example.com").GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
			t.Errorf("state = %v, want PENDING", got)
		}
		// A fresh link, issued after the bump, works.
		h2.Clock.Advance(10 * time.Minute)
		tok = h2.confirmToken(t, "bob@example.com")
		if _, err := h2.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok}); err != nil {
			t.Errorf("link issued after the bump: %v", err)
		}
	})
	if n := len(h.Sender.Mails()); n != 1 {
		t.Errorf("%d mails, want only the one confirmation", n)
	}
}

// tokenOf returns the token query parameter of link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func linktokenClaims(id string, epoch uint64, now time.Time) linktoken.Claims {
	return linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: id, IssuedAt: now, Epoch: epoch}
}

// unsubscribeToken returns a genuine unsubscribe token for id, as the
// digest's List-Unsubscribe link would carry.
func unsubscribeToken(t *testing.T, h *harness, id string, epoch uint64) string {
	t.Helper()
	res, err := h.client.ListDueSubscribers(internal(), &subscriberv1.ListDueSubscribersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.GetSubscribers() {
		if d.GetSubscriberId() == id {
			return tokenOf(t, d.GetUnsubscribeUrl())
		}
	}
	// Not active: sign one directly with the service's keys.
	tok, err := h.Keyring.Sign(linktokenClaims(id, epoch, h.Clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestUnsubscribe(t *testing.T) {
	h := start(t)
	sub := h.activate(t, "ada@example.com")
	tok := unsubscribeToken(t, h, sub.GetId(), 0)
	h.Clock.Advance(time.Minute)

	res, err := h.client.Unsubscribe(context.Background(), &subscriberv1.UnsubscribeRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetEmail() != "ada@example.com" {
		t.Errorf("email = %q", res.GetEmail())
	}
	got := h.get(t, "ada@example.com")
	if got.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED ||
		got.GetConsent().GetUnsubscribeChannel() != "api" ||
		!got.GetConsent().GetUnsubscribeTime().AsTime().Equal(testenv.StartTime().Add(time.Minute)) {
		t.Errorf("after Unsubscribe: %v", got)
	}

	t.Run("again is idempotent", func(t *testing.T) {
		before := h.Dump(t)
		if _, err := h.client.Unsubscribe(context.Background(), &subscriberv1.UnsubscribeRequest{Token: tok}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("Redis changed (-before +after):\n%s", diff)
		}
	})
	t.Run("suppressed stays suppressed", func(t *testing.T) {
		h.SetState(t, sub.GetId(), subscription.StateSuppressed)
		if _, err := h.client.Unsubscribe(context.Background(), &subscriberv1.UnsubscribeRequest{Token: tok}); err != nil {
			t.Fatal(err)
		}
		if got := h.get(t, "ada@example.com").GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED {
			t.Errorf("state = %v, want SUPPRESSED", got)
		}
	})
	t.Run("bad tokens", func(t *testing.T) {
		h2 := start(t)
		confirmTok := h2.confirmToken(t, "bob@example.com")
		for name, tok := range map[string]string{
			"empty":         "",
			"garbage":       "....",
			"confirm token": confirmTok,
			"oversized":     strings.Repeat("x.", 50<<10),
		} {
			t.Run(name, func(t *testing.T) {
				before := h2.Dump(t)
				_, err := h2.client.Unsubscribe(context.Background(), &subscriberv1.UnsubscribeRequest{Token: tok})
				wantViolations(t, err, "token")
				if diff := cmp.Diff(before, h2.Dump(t)); diff != "" {
					t.Errorf("Redis changed (-before +after):\n%s", diff)
				}
			})
		}
	})
}
