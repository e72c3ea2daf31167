package peers_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/subscribertest"
)

// serviceToken is the token the digest presents to the fake peers.
const serviceToken = "peers-test-service-token"

func TestSubscribersListDue(t *testing.T) {
	fake := subscribertest.Start(t, serviceToken)
	// 08:00 in Kolkata on Sunday 14 June 2026.
	at := time.Date(2026, 6, 14, 2, 30, 0, 0, time.UTC)
	fake.SetNow(at)
	s1 := fake.AddActive(t, "a@example.com", &subscriberv1.Preferences{DeliveryHour: 8, Timezone: "Asia/Kolkata"})
	s2 := fake.AddActive(t, "b@example.com", &subscriberv1.Preferences{
		Topics: []string{"diffusion"}, Keywords: []string{"video"},
		Frequency: subscriberv1.Frequency_FREQUENCY_WEEKLY, WeeklyDay: subscriberv1.Weekday_WEEKDAY_SUNDAY,
		DeliveryHour: 8, Timezone: "Asia/Kolkata",
	})
	fake.AddActive(t, "c@example.com", &subscriberv1.Preferences{DeliveryHour: 9, Timezone: "Asia/Kolkata"}) // not due
	conn, err := grpcclient.New(fake.Addr(), serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	subs := peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(conn))

	var got []digest.DueSubscriber
	token := ""
	for {
		page, next, err := subs.ListDue(context.Background(), at, 1, token)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		token = next
	}
	if len(got) != 2 {
		t.Fatalf("due = %+v, want a and b", got)
	}
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	zone := cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })
	ignoreLinks := cmpopts.IgnoreFields(digest.DueSubscriber{}, "UnsubscribeURL", "ManageURL")
	want := map[string]digest.DueSubscriber{
		s1.GetId(): {ID: s1.GetId(), Email: "a@example.com",
			Schedule: schedule.Prefs{Frequency: schedule.Daily, Weekday: time.Monday, Hour: 8, Location: kolkata}},
		s2.GetId(): {ID: s2.GetId(), Email: "b@example.com", Topics: []string{"diffusion"}, Keywords: []string{"video"},
			Schedule: schedule.Prefs{Frequency: schedule.Weekly, Weekday: time.Sunday, Hour: 8, Location: kolkata}},
	}
	for _, d := range got {
		if diff := cmp.Diff(want[d.ID], d, zone, ignoreLinks, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("due subscriber %s (-want +got):\n%s", d.Email, diff)
		}
		if !strings.HasPrefix(d.UnsubscribeURL, subscribertest.PublicURL) || !strings.HasPrefix(d.ManageURL, subscribertest.PublicURL) {
			t.Errorf("%s links = %q, %q; want the subscriber's signed links", d.Email, d.UnsubscribeURL, d.ManageURL)
		}
	}
}

func TestSubscribersListDueWithTheServiceDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens here now
	conn, err := grpcclient.New(addr, serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _, err = peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(conn)).ListDue(context.Background(), time.Now(), 1, "")
	if err == nil || !strings.Contains(err.Error(), "peers: list due subscribers: Unavailable:") {
		t.Errorf("ListDue with the service down = %v, want a short error naming the code", err)
	}
}

// dueLister answers ListDueSubscribers with one canned page: the subscriber
// service refuses unknown time zones on input, so only a stand-in can show
// what the adapter does with one.
type dueLister struct {
	resp *subscriberv1.ListDueSubscribersResponse
}

func (d dueLister) GetSubscriber(context.Context, *subscriberv1.GetSubscriberRequest, ...grpc.CallOption) (*subscriberv1.GetSubscriberResponse, error) {
	return nil, status.Error(codes.NotFound, "no such subscriber")
}

func (d dueLister) ListDueSubscribers(context.Context, *subscriberv1.ListDueSubscribersRequest, ...grpc.CallOption) (*subscriberv1.ListDueSubscribersResponse, error) {
	return d.resp, nil
}

func TestSubscribersUnknownTimeZoneIsNeverDue(t *testing.T) {
	subs := peers.NewSubscribers(dueLister{&subscriberv1.ListDueSubscribersResponse{Subscribers: []*subscriberv1.DueSubscriber{
		{SubscriberId: "s3", Email: "c@example.com", UnsubscribeUrl: "https://x/u", Preferences: &subscriberv1.Preferences{Timezone: "Mars/Olympus_Mons"}},
		{SubscriberId: "s4", Email: "d@example.com", UnsubscribeUrl: "https://x/u"},
	}}})
	page, _, err := subs.ListDue(context.Background(), time.Now(), 10, "")
	if err != nil || len(page) != 2 {
		t.Fatalf("ListDue = %v, %v", page, err)
	}
	if page[0].Schedule.Location != nil || page[0].Schedule.Valid() {
		t.Errorf("an unknown time zone gave %v; want no location (never due)", page[0].Schedule.Location)
	}
	if p := page[1].Schedule; p.Location != time.UTC || p.Frequency != schedule.Daily || p.Hour != 0 || p.Weekday != time.Monday {
		t.Errorf("no preferences gave %+v, want daily, midnight, UTC", p)
	}
}

func TestSenderWrongTokenIsRefused(t *testing.T) {
	fake := sendertest.Start(t, serviceToken)
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
	fake := sendertest.Start(t, serviceToken)
	conn, err := grpcclient.New(fake.Addr(), serviceToken)
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
