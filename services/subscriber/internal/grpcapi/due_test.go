package grpcapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

func TestListDueSubscribers(t *testing.T) {
	h := start(t)
	var active []string
	for i := range 5 {
		h.Clock.Advance(time.Millisecond)
		addr := string(rune('a'+i)) + "@example.com"
		if i == 2 {
			h.subscribe(t, addr) // pending: not due
			continue
		}
		active = append(active, h.activate(t, addr).GetId())
	}
	h.SetState(t, active[3], subscription.StateSuppressed) // not due
	active = active[:3]

	var got []string
	req := &subscriberv1.ListDueSubscribersRequest{DueTime: timestamppb.New(sevenUTC), PageSize: 2}
	for {
		res, err := h.client.ListDueSubscribers(internal(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.GetSubscribers() {
			got = append(got, d.GetSubscriberId())
			if !strings.HasPrefix(d.GetUnsubscribeUrl(), h.PublicURL+"/unsubscribe?token=") {
				t.Errorf("unsubscribe url = %q", d.GetUnsubscribeUrl())
			}
		}
		if res.GetNextPageToken() == "" {
			break
		}
		req.PageToken = res.GetNextPageToken()
	}
	if diff := cmp.Diff(active, got); diff != "" {
		t.Errorf("due ids mismatch (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name  string
		req   *subscriberv1.ListDueSubscribersRequest
		field string
	}{
		{"negative page size", &subscriberv1.ListDueSubscribersRequest{PageSize: -5}, "page_size"},
		{"garbage page token", &subscriberv1.ListDueSubscribersRequest{PageToken: "%%%"}, "page_token"},
		{"invalid due time", &subscriberv1.ListDueSubscribersRequest{DueTime: &timestamppb.Timestamp{Seconds: 1 << 62}}, "due_time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Dump(t)
			_, err := h.client.ListDueSubscribers(internal(), tt.req)
			wantViolations(t, err, tt.field)
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestListDueSubscribersSkipsWithoutStopping checks that a subscriber who
// leaves the active state while a page is being read does not end the list
// early: everyone after them is still listed.
func TestListDueSubscribersSkipsWithoutStopping(t *testing.T) {
	h := start(t)
	var ids []string
	for _, addr := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		h.Clock.Advance(time.Millisecond)
		ids = append(ids, h.activate(t, addr).GetId())
	}
	// b as a page sees it when b unsubscribes between the read of the
	// active index and the read of the records: indexed as active, but not.
	if err := h.RDB.HSet(context.Background(), "sub:{s}:rec:"+ids[1], "state", "unsubscribed").Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	req := &subscriberv1.ListDueSubscribersRequest{PageSize: 1, DueTime: timestamppb.New(sevenUTC)}
	for {
		res, err := h.client.ListDueSubscribers(internal(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.GetSubscribers() {
			got = append(got, d.GetSubscriberId())
		}
		if res.GetNextPageToken() == "" {
			break
		}
		req.PageToken = res.GetNextPageToken()
	}
	if diff := cmp.Diff([]string{ids[0], ids[2]}, got); diff != "" {
		t.Errorf("due ids mismatch (-want +got):\n%s", diff)
	}
}

// sevenUTC is inside the default delivery slot (07:00 UTC) of the day
// testenv starts on.
var sevenUTC = time.Date(2026, 6, 12, 7, 30, 0, 0, time.UTC)
