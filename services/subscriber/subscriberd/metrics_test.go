package subscriberd_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/metrics/metricstest"
)

// waitMetrics scrapes until every series has its wanted value, under a
// deadline, and reports the ones that never did.
func (s *service) waitMetrics(t *testing.T, want map[string]float64) {
	t.Helper()
	metricstest.Wait(t, s.publicURL+"/metrics", want, 10*time.Second)
}

// TestMetricsFollowTheLifecycle drives subscribers through the real service
// (gRPC and the link pages) and reads each lifecycle metric from /metrics.
func TestMetricsFollowTheLifecycle(t *testing.T) {
	s := startService(t)
	web := noRedirects()
	ctx := context.Background()
	subscribe := func(addr string) error {
		t.Helper()
		_, err := s.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: addr, ConsentTextVersion: "2026-06", ClientIp: "203.0.113.9"})
		return err
	}

	s.waitMetrics(t, map[string]float64{
		`subscriber_subscribers{state="pending"}`:           0,
		`subscriber_subscribers{state="active"}`:            0,
		`subscriber_subscriptions_total{result="new"}`:      0,
		`subscriber_delivery_failures_total{kind="bounce"}`: 0,
	})

	// A new address: one PENDING record.
	const ada = "ada@example.com"
	if err := subscribe(ada); err != nil {
		t.Fatal(err)
	}
	s.waitMetrics(t, map[string]float64{
		`subscriber_subscriptions_total{result="new"}`: 1,
		`subscriber_subscribers{state="pending"}`:      1,
	})

	// Confirmed by the link page: ACTIVE.
	var link string
	for deadline := time.Now().Add(10 * time.Second); link == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range s.sender.Mails() {
			if m.To == ada {
				link = regexp.MustCompile(regexp.QuoteMeta(s.publicURL) + `/confirm\?token=[A-Za-z0-9_.%-]+`).FindString(m.Text)
			}
		}
	}
	u, err := url.Parse(link)
	if link == "" || err != nil {
		t.Fatalf("no confirmation link mailed to %s", ada)
	}
	if code, body := fetch(t, web, "POST", s.publicURL+"/confirm", "application/x-www-form-urlencoded", url.Values{"token": {u.Query().Get("token")}}.Encode()); code != 200 {
		t.Fatalf("POST confirm: %d\n%s", code, body)
	}
	s.waitMetrics(t, map[string]float64{
		`subscriber_confirmations_total`:          1,
		`subscriber_subscribers{state="pending"}`: 0,
		`subscriber_subscribers{state="active"}`:  1,
	})

	// Signing up again is counted by the state the address is in.
	if err := subscribe(ada); err != nil {
		t.Fatal(err)
	}
	s.waitMetrics(t, map[string]float64{`subscriber_subscriptions_total{result="active"}`: 1})

	// The per-mailbox limit (3 a day, +tags ignored) refuses the fourth.
	var refused error
	for i := 0; refused == nil && i < 10; i++ {
		refused = subscribe(fmt.Sprintf("ada+%d@example.com", i))
	}
	if status.Code(refused) != codes.ResourceExhausted {
		t.Fatalf("Subscribe over the mailbox limit: %v, want ResourceExhausted", refused)
	}
	s.waitMetrics(t, map[string]float64{`subscriber_rate_limited_total{limit="mailbox"}`: 1})

	// One-click unsubscribe from a digest's URL.
	y, m, d := time.Now().UTC().Date()
	due, err := s.client.ListDueSubscribers(as(serviceToken), &subscriberv1.ListDueSubscribersRequest{
		DueTime: timestamppb.New(time.Date(y, m, d, 7, 30, 0, 0, time.UTC))})
	if err != nil || len(due.GetSubscribers()) != 1 {
		t.Fatalf("ListDueSubscribers = %v, %v; want ada", due, err)
	}
	if code, body := fetch(t, web, "POST", due.GetSubscribers()[0].GetUnsubscribeUrl(), "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); code != 200 {
		t.Fatalf("one-click: %d\n%s", code, body)
	}
	s.waitMetrics(t, map[string]float64{
		`subscriber_unsubscribes_total{channel="one_click"}`: 1,
		`subscriber_subscribers{state="active"}`:             0,
		`subscriber_subscribers{state="unsubscribed"}`:       1,
	})

	// A hard bounce for a PENDING address suppresses it; a complaint for
	// an unknown one is still counted.
	s.waitMetrics(t, map[string]float64{`subscriber_subscribers{state="pending"}`: 1}) // ada+0
	for _, r := range []*subscriberv1.RecordDeliveryFailureRequest{
		{Email: "ada+0@example.com", Kind: subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_HARD_BOUNCE, Detail: "550 5.1.1"},
		{Email: "nobody@example.com", Kind: subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_COMPLAINT},
	} {
		if _, err := s.client.RecordDeliveryFailure(as(serviceToken), r); err != nil {
			t.Fatal(err)
		}
	}
	s.waitMetrics(t, map[string]float64{
		`subscriber_delivery_failures_total{kind="bounce"}`:    1,
		`subscriber_delivery_failures_total{kind="complaint"}`: 1,
		`subscriber_unsubscribes_total{channel="bounce"}`:      1,
		`subscriber_subscribers{state="pending"}`:              0,
		`subscriber_subscribers{state="suppressed"}`:           1,
	})
}
