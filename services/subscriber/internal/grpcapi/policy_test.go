package grpcapi_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
)

func TestPolicyCoversEveryMethod(t *testing.T) {
	policy := grpcapi.Policy()
	desc := subscriberv1.SubscriberService_ServiceDesc
	var methods []string
	for _, m := range desc.Methods {
		methods = append(methods, "/"+desc.ServiceName+"/"+m.MethodName)
	}
	for _, s := range desc.Streams {
		methods = append(methods, "/"+desc.ServiceName+"/"+s.StreamName)
	}
	for _, m := range methods {
		if _, ok := policy[m]; !ok {
			t.Errorf("method %s has no policy entry", m)
		}
	}
	if len(policy) != len(methods) {
		t.Errorf("policy has %d entries for %d methods: %v", len(policy), len(methods), policy)
	}
}

func TestAuth(t *testing.T) {
	h := start(t)
	calls := map[string]func(ctx context.Context) error{
		"GetSubscriber": func(ctx context.Context) error {
			_, err := h.client.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: "nobody@example.com"})
			return err
		},
		"ListSubscribers": func(ctx context.Context) error {
			_, err := h.client.ListSubscribers(ctx, &subscriberv1.ListSubscribersRequest{})
			return err
		},
		"ListDueSubscribers": func(ctx context.Context) error {
			_, err := h.client.ListDueSubscribers(ctx, &subscriberv1.ListDueSubscribersRequest{})
			return err
		},
		"Subscribe": func(ctx context.Context) error {
			_, err := h.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: "auth@example.com", ConsentTextVersion: "v1"})
			return err
		},
		"ConfirmSubscription": func(ctx context.Context) error {
			_, err := h.client.ConfirmSubscription(ctx, &subscriberv1.ConfirmSubscriptionRequest{Token: "x"})
			return err
		},
		"Unsubscribe": func(ctx context.Context) error {
			_, err := h.client.Unsubscribe(ctx, &subscriberv1.UnsubscribeRequest{Token: "x"})
			return err
		},
	}
	tests := []struct {
		method string
		who    string
		ctx    context.Context
		want   codes.Code
	}{
		{"GetSubscriber", "anonymous", context.Background(), codes.Unauthenticated},
		{"GetSubscriber", "wrong token", as("not-a-token"), codes.Unauthenticated},
		// The digest reads one subscriber's preferences for an operator's preview.
		{"GetSubscriber", "service", internal(), codes.NotFound},
		{"GetSubscriber", "operator", admin(), codes.NotFound},
		{"ListSubscribers", "anonymous", context.Background(), codes.Unauthenticated},
		{"ListSubscribers", "wrong token", as("not-a-token"), codes.Unauthenticated},
		{"ListSubscribers", "operator", admin(), codes.OK},
		{"ListSubscribers", "service", internal(), codes.OK},
		{"ListDueSubscribers", "anonymous", context.Background(), codes.Unauthenticated},
		{"ListDueSubscribers", "wrong token", as("not-a-token"), codes.Unauthenticated},
		{"ListDueSubscribers", "operator", admin(), codes.PermissionDenied},
		{"ListDueSubscribers", "service", internal(), codes.OK},
		{"Subscribe", "anonymous", context.Background(), codes.OK},
		// TOKEN methods reach the service, which checks the link token.
		{"ConfirmSubscription", "anonymous", context.Background(), codes.InvalidArgument},
		{"Unsubscribe", "anonymous", context.Background(), codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.method+" as "+tt.who, func(t *testing.T) {
			err := calls[tt.method](tt.ctx)
			if got := status.Code(err); got != tt.want {
				t.Errorf("code = %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}
