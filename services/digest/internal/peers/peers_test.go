package peers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/peertest"
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
	"github.com/paperroute/paperroute/services/sender/sendertest"
)

func TestSubscribersListDue(t *testing.T) {
	fake := peertest.StartSubscribers(t,
		&subscriberv1.DueSubscriber{SubscriberId: "s1", Email: "a@example.com", UnsubscribeUrl: "https://x/u?t=1"},
		&subscriberv1.DueSubscriber{SubscriberId: "s2", Email: "b@example.com", UnsubscribeUrl: "https://x/u?t=2",
			ManageUrl: "https://x/p?t=2", Preferences: &subscriberv1.Preferences{
				Topics: []string{"diffusion"}, Keywords: []string{"video"},
				Frequency: subscriberv1.Frequency_FREQUENCY_WEEKLY, WeeklyDay: subscriberv1.Weekday_WEEKDAY_SUNDAY,
				DeliveryHour: 8, Timezone: "Asia/Kolkata",
			}},
		&subscriberv1.DueSubscriber{SubscriberId: "s3", Email: "c@example.com", UnsubscribeUrl: "https://x/u?t=3",
			Preferences: &subscriberv1.Preferences{Timezone: "Mars/Olympus_Mons"}},
	)
	conn, err := grpcclient.New(fake.Addr, peertest.Tokens.Service)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	subs := peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(conn))

	page, next, err := subs.ListDue(context.Background(), time.Now(), 1, "")
	if err != nil {
		t.Fatal(err)
	}
	zone := cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })
	// Without preferences: the defaults, daily at midnight UTC.
	want := []digest.DueSubscriber{{ID: "s1", Email: "a@example.com", UnsubscribeURL: "https://x/u?t=1",
		Schedule: schedule.Prefs{Frequency: schedule.Daily, Weekday: time.Monday, Location: time.UTC}}}
	if diff := cmp.Diff(want, page, zone); diff != "" {
		t.Errorf("first page (-want +got):\n%s", diff)
	}
	page, next, err = subs.ListDue(context.Background(), time.Now(), 5, next)
	if err != nil || len(page) != 2 || next != "" {
		t.Fatalf("second page = %v, %q, %v; want s2, s3 and the end", page, next, err)
	}
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	want = []digest.DueSubscriber{{ID: "s2", Email: "b@example.com", UnsubscribeURL: "https://x/u?t=2", ManageURL: "https://x/p?t=2",
		Topics: []string{"diffusion"}, Keywords: []string{"video"},
		Schedule: schedule.Prefs{Frequency: schedule.Weekly, Weekday: time.Sunday, Hour: 8, Location: kolkata}}}
	if diff := cmp.Diff(want, page[:1], zone); diff != "" {
		t.Errorf("subscriber with preferences (-want +got):\n%s", diff)
	}
	if page[1].Schedule.Location != nil || page[1].Schedule.Valid() {
		t.Errorf("an unknown time zone gave %v; want no location (never due)", page[1].Schedule.Location)
	}

	fake.FailWith(status.Error(codes.Internal, "down for maintenance"))
	_, _, err = subs.ListDue(context.Background(), time.Now(), 1, "")
	if err == nil || !strings.Contains(err.Error(), "list due subscribers: Internal: down for maintenance") {
		t.Errorf("ListDue with the service down = %v, want a short error naming the code", err)
	}
}

func TestSenderWrongTokenIsRefused(t *testing.T) {
	fake := sendertest.Start(t, peertest.Tokens.Service)
	conn, err := grpcclient.New(fake.Addr(), "not-the-service-token")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sender := peers.NewSender(senderv1.NewSenderServiceClient(conn))
	if _, err := sender.PutContent(context.Background(), digest.Content{Subject: "s", Text: "t"}); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("PutContent with a wrong token = %v, want Unauthenticated", err)
	}
}

func TestSenderEnqueue(t *testing.T) {
	fake := sendertest.Start(t, peertest.Tokens.Service)
	conn, err := grpcclient.New(fake.Addr(), peertest.Tokens.Service)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sender := peers.NewSender(senderv1.NewSenderServiceClient(conn))
	ctx := context.Background()

	id, err := sender.PutContent(ctx, digest.Content{Subject: "s", HTML: `<a href="{{unsubscribe_url}}">x</a>`, Text: "t"})
	if err != nil || id == "" {
		t.Fatalf("PutContent = %q, %v", id, err)
	}
	msg := digest.Message{Key: "digest:s1:2026-06-12", Recipient: "a@example.com", ContentID: id,
		Variables: map[string]string{"unsubscribe_url": "https://x/u"}, ListUnsubscribeURL: "https://x/u"}
	for _, wantDup := range []bool{false, true} {
		res, err := sender.Enqueue(ctx, []digest.Message{msg})
		if diff := cmp.Diff([]digest.EnqueueResult{{Key: msg.Key, Duplicate: wantDup}}, res); err != nil || diff != "" {
			t.Errorf("Enqueue = %v (-want +got):\n%s", err, diff)
		}
	}
	if q := fake.Queued(); len(q) != 1 || q[0].GetLane() != senderv1.Lane_LANE_BULK {
		t.Errorf("queued = %v, want one message on the bulk lane", q)
	}

	noVars := msg
	noVars.Key, noVars.Variables = "digest:s2:2026-06-12", nil
	if _, err := sender.Enqueue(ctx, []digest.Message{noVars}); !errors.Is(err, digest.ErrRejected) {
		t.Errorf("Enqueue of an invalid message = %v, want ErrRejected", err)
	}
	fake.FailEnqueue(status.Error(codes.Internal, "disk full"))
	if _, err := sender.Enqueue(ctx, []digest.Message{msg}); err == nil || errors.Is(err, digest.ErrRejected) {
		t.Errorf("Enqueue with the sender failing = %v, want an error that is not ErrRejected", err)
	}
}
