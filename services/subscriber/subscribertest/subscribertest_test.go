package subscribertest_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/services/subscriber/subscribertest"
)

func TestDueWithPreferencesAndLinks(t *testing.T) {
	f := subscribertest.New()
	ctx := context.Background()
	kolkata := f.AddActive(t, "asha@example.com", &subscriberv1.Preferences{
		Topics: []string{"llm", "rl"}, Keywords: []string{"mixture of experts"},
		Frequency: subscriberv1.Frequency_FREQUENCY_DAILY, DeliveryHour: 8, Timezone: "Asia/Kolkata",
	})
	f.AddActive(t, "ben@example.com", &subscriberv1.Preferences{DeliveryHour: 8, Timezone: "Europe/Berlin"})

	// 08:10 in Kolkata (UTC+5:30) is 02:40 UTC.
	at := time.Date(2026, 6, 12, 2, 40, 0, 0, time.UTC)
	res, err := f.ListDueSubscribers(ctx, &subscriberv1.ListDueSubscribersRequest{DueTime: timestamp(at)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetSubscribers()) != 1 {
		t.Fatalf("due = %v, want only asha", res.GetSubscribers())
	}
	d := res.GetSubscribers()[0]
	if d.GetSubscriberId() != kolkata.GetId() || d.GetPreferences().GetTimezone() != "Asia/Kolkata" ||
		len(d.GetPreferences().GetTopics()) != 2 || d.GetManageUrl() == "" || d.GetUnsubscribeUrl() == "" {
		t.Errorf("due subscriber = %v", d)
	}
}

func TestSubscribeValidatesLikeTheService(t *testing.T) {
	f := subscribertest.New()
	_, err := f.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{
		Email: "x@example.com", ConsentTextVersion: "v1", Topics: []string{"llm", "no-such-topic"}, Timezone: "Mars/Olympus",
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	v := grpcerr.FieldViolations(err)
	if v["topics[1]"] == "" || v["timezone"] == "" {
		t.Errorf("violations = %v, want topics[1] and timezone", v)
	}
}

func TestRecordDeliveryFailureSuppresses(t *testing.T) {
	f := subscribertest.New()
	ctx := context.Background()
	f.AddActive(t, "gone@example.com", nil)
	for range 2 { // idempotent
		if _, err := f.RecordDeliveryFailure(ctx, &subscriberv1.RecordDeliveryFailureRequest{
			Email: "gone@example.com", Kind: subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_HARD_BOUNCE, Detail: "550 no such user",
		}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: "gone@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetSubscriber().GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED ||
		res.GetSubscriber().GetSuppressReason() != "hard-bounce: 550 no such user" {
		t.Errorf("subscriber = %v", res.GetSubscriber())
	}
	if got := f.Cancelled(); len(got) != 1 || got[0] != "gone@example.com" {
		t.Errorf("Cancelled = %v", got)
	}
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func TestStartServesWithPolicy(t *testing.T) {
	f := subscribertest.Start(t, "svc-token")
	if f.Addr() == "" {
		t.Fatal("no address")
	}
}
