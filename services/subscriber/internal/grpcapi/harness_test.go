package grpcapi_test

import (
	"context"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// harness is the service behind a real gRPC server on loopback TCP, called
// through the generated client.
type harness struct {
	*testenv.Env
	client subscriberv1.SubscriberServiceClient
}

func start(t testing.TB) *harness {
	t.Helper()
	return startWith(t, testenv.Options{})
}

func startWith(t testing.TB, opts testenv.Options) *harness {
	t.Helper()
	env := testenv.New(t, opts)
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: testenv.AdminToken, Service: testenv.ServiceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	subscriberv1.RegisterSubscriberServiceServer(srv.GRPC, grpcapi.NewServer(env.Service))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &harness{Env: env, client: subscriberv1.NewSubscriberServiceClient(conn)}
}

func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func admin() context.Context    { return as(testenv.AdminToken) }
func internal() context.Context { return as(testenv.ServiceToken) }

func (h *harness) subscribe(t *testing.T, email string) *subscriberv1.SubscribeResponse {
	t.Helper()
	res, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: email, ClientIp: "192.0.2.7", UserAgent: "TestBrowser/1.0", ConsentTextVersion: "v1"})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", email, err)
	}
	h.Work(t)
	return res
}

func (h *harness) get(t *testing.T, email string) *subscriberv1.Subscriber {
	t.Helper()
	res, err := h.client.GetSubscriber(admin(), &subscriberv1.GetSubscriberRequest{Email: email})
	if err != nil {
		t.Fatalf("GetSubscriber(%q): %v", email, err)
	}
	return res.GetSubscriber()
}

// confirmToken subscribes email and returns the token of its confirmation
// mail.
func (h *harness) confirmToken(t *testing.T, email string) string {
	t.Helper()
	h.subscribe(t, email)
	mails := h.MailsTo(email)
	if len(mails) == 0 {
		t.Fatalf("no mail to %s", email)
	}
	_, tok := testenv.Link(t, h.PublicURL, mails[len(mails)-1], "confirm")
	return tok
}

// activate subscribes and confirms email and returns the subscriber.
func (h *harness) activate(t *testing.T, email string) *subscriberv1.Subscriber {
	t.Helper()
	tok := h.confirmToken(t, email)
	if _, err := h.client.ConfirmSubscription(context.Background(), &subscriberv1.ConfirmSubscriptionRequest{Token: tok}); err != nil {
		t.Fatalf("ConfirmSubscription: %v", err)
	}
	return h.get(t, email)
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

// wantViolations checks err is InvalidArgument naming exactly fields.
func wantViolations(t *testing.T, err error, fields ...string) {
	t.Helper()
	wantCode(t, err, codes.InvalidArgument)
	var got []string
	for f := range grpcerr.FieldViolations(err) {
		got = append(got, f)
	}
	if diff := cmp.Diff(fields, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("field violations mismatch (-want +got):\n%s\nerror: %v", diff, err)
	}
}
