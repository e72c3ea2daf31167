package grpcapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
)

func TestGetSubscriber(t *testing.T) {
	h := start(t)
	sub := h.activate(t, "ada@example.com")
	tests := []struct {
		name   string
		req    *subscriberv1.GetSubscriberRequest
		code   codes.Code
		fields []string
	}{
		{"by id", &subscriberv1.GetSubscriberRequest{SubscriberId: sub.GetId()}, codes.OK, nil},
		{"by lower-case id", &subscriberv1.GetSubscriberRequest{SubscriberId: strings.ToLower(sub.GetId())}, codes.OK, nil},
		{"by email", &subscriberv1.GetSubscriberRequest{Email: "ada@example.com"}, codes.OK, nil},
		{"by email in other case", &subscriberv1.GetSubscriberRequest{Email: "ADA@Example.com"}, codes.OK, nil},
		{"unknown id", &subscriberv1.GetSubscriberRequest{SubscriberId: "01J0000000000000000000000Z"}, codes.NotFound, nil},
		{"unknown email", &subscriberv1.GetSubscriberRequest{Email: "bob@example.com"}, codes.NotFound, nil},
		{"neither", &subscriberv1.GetSubscriberRequest{}, codes.InvalidArgument, []string{"id", "email"}},
		{"by id (new field)", &subscriberv1.GetSubscriberRequest{Id: sub.GetId()}, codes.OK, nil},
		{"id and subscriber_id", &subscriberv1.GetSubscriberRequest{Id: sub.GetId(), SubscriberId: sub.GetId()}, codes.InvalidArgument, []string{"subscriber_id"}},
		{"id and email", &subscriberv1.GetSubscriberRequest{Id: sub.GetId(), Email: "ada@example.com"}, codes.InvalidArgument, []string{"id", "email"}},
		{"bad new id", &subscriberv1.GetSubscriberRequest{Id: "nope"}, codes.InvalidArgument, []string{"id"}},
		{"both", &subscriberv1.GetSubscriberRequest{SubscriberId: sub.GetId(), Email: "ada@example.com"}, codes.InvalidArgument, []string{"subscriber_id", "email"}},
		{"bad id", &subscriberv1.GetSubscriberRequest{SubscriberId: "../../etc/passwd"}, codes.InvalidArgument, []string{"subscriber_id"}},
		{"huge id", &subscriberv1.GetSubscriberRequest{SubscriberId: strings.Repeat("0", 100<<10)}, codes.InvalidArgument, []string{"subscriber_id"}},
		{"bad email", &subscriberv1.GetSubscriberRequest{Email: "ada@example.com\r\n"}, codes.InvalidArgument, []string{"email"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Dump(t)
			res, err := h.client.GetSubscriber(admin(), tt.req)
			switch {
			case tt.code == codes.InvalidArgument:
				wantViolations(t, err, tt.fields...)
			case tt.code != codes.OK:
				wantCode(t, err, tt.code)
			case err != nil:
				t.Fatal(err)
			default:
				if diff := cmp.Diff(sub, res.GetSubscriber(), protocmp.Transform()); diff != "" {
					t.Errorf("subscriber mismatch (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestListSubscribers(t *testing.T) {
	h := start(t)
	var ids []string
	for i, addr := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"} {
		h.Clock.Advance(time.Millisecond) // ids sort by time
		if i%2 == 0 {
			ids = append(ids, h.activate(t, addr).GetId())
		} else {
			h.subscribe(t, addr)
			ids = append(ids, h.get(t, addr).GetId())
		}
	}
	list := func(t *testing.T, req *subscriberv1.ListSubscribersRequest) (got []string, pages int) {
		t.Helper()
		for {
			res, err := h.client.ListSubscribers(admin(), req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range res.GetSubscribers() {
				got = append(got, s.GetId())
			}
			if res.GetNextPageToken() == "" {
				return got, pages
			}
			req = proto.CloneOf(req)
			req.PageToken = res.GetNextPageToken()
		}
	}
	tests := []struct {
		name      string
		req       *subscriberv1.ListSubscribersRequest
		want      []string
		wantPages int
	}{
		{"all, default size", &subscriberv1.ListSubscribersRequest{}, ids, 1},
		{"all, pages of 2", &subscriberv1.ListSubscribersRequest{PageSize: 2}, ids, 3},
		{"all, page size exactly the count", &subscriberv1.ListSubscribersRequest{PageSize: 5}, ids, 1},
		{"all, oversized page size is capped", &subscriberv1.ListSubscribersRequest{PageSize: 1 << 30}, ids, 1},
		{"active", &subscriberv1.ListSubscribersRequest{State: subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE, PageSize: 1}, []string{ids[0], ids[2], ids[4]}, 3},
		{"pending", &subscriberv1.ListSubscribersRequest{State: subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING}, []string{ids[1], ids[3]}, 1},
		{"suppressed (none)", &subscriberv1.ListSubscribersRequest{State: subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := list(t, tt.req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids mismatch (-want +got):\n%s", diff)
			}
			if pages != tt.wantPages {
				t.Errorf("%d pages, want %d", pages, tt.wantPages)
			}
		})
	}

	bad := []struct {
		name  string
		req   *subscriberv1.ListSubscribersRequest
		field string
	}{
		{"negative page size", &subscriberv1.ListSubscribersRequest{PageSize: -1}, "page_size"},
		{"garbage page token", &subscriberv1.ListSubscribersRequest{PageToken: "garbage!"}, "page_token"},
		{"base64 of a non-id", &subscriberv1.ListSubscribersRequest{PageToken: "aGVsbG8"}, "page_token"},
		{"oversized page token", &subscriberv1.ListSubscribersRequest{PageToken: strings.Repeat("A", 100<<10)}, "page_token"},
		{"unknown state", &subscriberv1.ListSubscribersRequest{State: 99}, "state"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Dump(t)
			_, err := h.client.ListSubscribers(admin(), tt.req)
			wantViolations(t, err, tt.field)
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
		})
	}
}
