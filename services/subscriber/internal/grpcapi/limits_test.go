package grpcapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// wantExhausted checks err is ResourceExhausted with a RetryInfo delay.
func wantExhausted(t *testing.T, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code = %v (%v), want ResourceExhausted", st.Code(), err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return
		}
	}
	t.Errorf("ResourceExhausted without a RetryInfo delay: %v", st.Details())
}

// TestLimitsAtTheEdge checks every abuse limit lets exactly its count
// through and refuses the next request with RetryInfo, without queueing it.
func TestLimitsAtTheEdge(t *testing.T) {
	off := testenv.GenerousLimits()
	three := subscription.Limit{Rate: 3, Burst: 3, Period: 24 * time.Hour}
	tests := []struct {
		name   string
		limits func(*subscription.Limits)
		// req returns the i-th request (i from 0); the first 3 must pass.
		req func(i int) *subscriberv1.SubscribeRequest
	}{
		{"per IP", func(l *subscription.Limits) { l.PerIP = three }, func(i int) *subscriberv1.SubscribeRequest {
			return &subscriberv1.SubscribeRequest{Email: fmt.Sprintf("u%d@example.com", i), ClientIp: "192.0.2.7"}
		}},
		{"per IPv4 /24", func(l *subscription.Limits) { l.PerNetwork = three }, func(i int) *subscriberv1.SubscribeRequest {
			return &subscriberv1.SubscribeRequest{Email: fmt.Sprintf("u%d@example.com", i), ClientIp: fmt.Sprintf("198.51.100.%d", 10+i)}
		}},
		{"per IPv6 /64", func(l *subscription.Limits) { l.PerNetwork = three }, func(i int) *subscriberv1.SubscribeRequest {
			return &subscriberv1.SubscribeRequest{Email: fmt.Sprintf("u%d@example.com", i), ClientIp: fmt.Sprintf("2001:db8:1:2::%x", 100+i)}
		}},
		{"per mailbox, case and +tag ignored", func(l *subscription.Limits) { l.PerMailbox = three }, func(i int) *subscriberv1.SubscribeRequest {
			addrs := []string{"victim@example.com", "Victim+1@example.com", "VICTIM+news@EXAMPLE.com", "victim+2@example.com"}
			return &subscriberv1.SubscribeRequest{Email: addrs[i], ClientIp: fmt.Sprintf("203.0.%d.1", i)}
		}},
		{"global", func(l *subscription.Limits) { l.Global = subscription.Limit{Rate: 3, Burst: 3, Period: time.Minute} }, func(i int) *subscriberv1.SubscribeRequest {
			return &subscriberv1.SubscribeRequest{Email: fmt.Sprintf("u%d@example.com", i), ClientIp: fmt.Sprintf("203.0.%d.1", i)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limits := off
			tt.limits(&limits)
			h := startWith(t, testenv.Options{Limits: limits})
			ctx := context.Background()
			for i := range 3 {
				req := tt.req(i)
				req.ConsentTextVersion = "v1"
				if _, err := h.client.Subscribe(ctx, req); err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
			}
			if n := h.Work(t); n != 3 {
				t.Fatalf("%d jobs for 3 accepted sign-ups", n)
			}
			req := tt.req(3)
			req.ConsentTextVersion = "v1"
			_, err := h.client.Subscribe(ctx, req)
			wantExhausted(t, err)
			if n := h.Work(t); n != 0 {
				t.Errorf("a refused sign-up queued %d jobs", n)
			}
		})
	}
}

// TestMailboxLimitCapsConfirmationMails is the case: one address
// cannot be sent more than 3 confirmations a day however often, or under
// how many spellings, it is signed up.
func TestMailboxLimitCapsConfirmationMails(t *testing.T) {
	limits := testenv.GenerousLimits()
	limits.PerMailbox = subscription.Limit{Rate: 3, Burst: 3, Period: 24 * time.Hour}
	h := startWith(t, testenv.Options{Limits: limits})
	ctx := context.Background()
	refused := 0
	for i := range 10 {
		h.Clock.Advance(10 * time.Minute) // a new mail window each time
		_, err := h.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: fmt.Sprintf("victim+%d@example.com", i), ConsentTextVersion: "v1"})
		if status.Code(err) == codes.ResourceExhausted {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
		h.Work(t)
	}
	mails := 0
	for _, m := range h.Sender.Mails() {
		if subscription.MailboxKey(m.To) == "victim@example.com" {
			mails++
		}
	}
	if mails > 3 || refused != 7 {
		t.Errorf("%d mails to the victim's mailbox and %d refusals, want at most 3 and 7", mails, refused)
	}
}
