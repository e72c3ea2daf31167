package grpcapi_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// harness is the service behind a real gRPC server on loopback TCP, called
// through the generated client.
type harness struct {
	*testenv.Env
	client subscriberv1.SubscriberServiceClient
}

func start(t *testing.T) *harness {
	t.Helper()
	env := testenv.New(t, testenv.Options{})
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: testenv.AdminToken, Service: testenv.ServiceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	grpcapi.Register(srv.GRPC, grpcapi.New(env.Service))
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
	res, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: email, ClientIp: "192.0.2.7", UserAgent: "TestBrowser/1.0"})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", email, err)
	}
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
			_, err := h.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: "auth@example.com"})
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
		{"GetSubscriber", "service", internal(), codes.PermissionDenied},
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

// TestSubscribeAnswersAlike checks that the answer reveals nothing: new,
// pending, active, unsubscribed and suppressed addresses get byte-identical
// responses, while the mails differ as specified.
func TestSubscribeAnswersAlike(t *testing.T) {
	h := start(t)
	const (
		pending      = "pending@example.com"
		active       = "active@example.com"
		suppressed   = "suppressed@example.com"
		unsubscribed = "unsubscribed@example.com"
		fresh        = "new@example.com"
	)
	h.subscribe(t, pending)
	h.activate(t, active)
	supp := h.activate(t, suppressed)
	h.SetState(t, supp.GetId(), subscription.StateSuppressed)
	unsub := h.activate(t, unsubscribed)
	h.SetState(t, unsub.GetId(), subscription.StateUnsubscribed)
	// A new window, so that the throttle lets every mail kind through once.
	h.Clock.Advance(10 * time.Minute)
	before := map[string]int{}
	for _, a := range []string{pending, active, suppressed, unsubscribed, fresh} {
		before[a] = len(h.MailsTo(a))
	}

	var answers [][]byte
	for _, a := range []string{fresh, pending, active, suppressed, unsubscribed} {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h.subscribe(t, a))
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, b)
	}
	for i, b := range answers[1:] {
		if string(b) != string(answers[0]) {
			t.Errorf("answer %d = %q, want the same bytes as for a new address %q", i+1, b, answers[0])
		}
	}
	if got, want := h.subscribe(t, fresh).GetMessage(), grpcapi.SubscribeMessage; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}

	newMail := func(addr string) []sendertest.Mail { return h.MailsTo(addr)[before[addr]:] }
	subjects := func(ms []sendertest.Mail) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Subject)
		}
		return out
	}
	const confirmSubject = "Confirm your paperroute subscription"
	const alreadySubject = "You are already subscribed to paperroute"
	for addr, want := range map[string][]string{
		fresh:        {confirmSubject},
		pending:      {confirmSubject},
		unsubscribed: {confirmSubject},
		active:       {alreadySubject},
		suppressed:   nil,
	} {
		if diff := cmp.Diff(want, subjects(newMail(addr))); diff != "" {
			t.Errorf("mails to %s (-want +got):\n%s", addr, diff)
		}
	}
	already := newMail(active)[0]
	link, tok := testenv.Link(t, h.PublicURL, already, "unsubscribe")
	if !strings.Contains(already.Text, link) || tok == "" {
		t.Errorf("already-subscribed mail lacks an unsubscribe link:\n%s", already.Text)
	}
	for _, m := range h.Sender.Mails() {
		if m.Lane.String() != "LANE_TRANSACTIONAL" || m.ListUnsubscribeURL != "" {
			t.Errorf("mail %s: lane %v, list_unsubscribe_url %q; want TRANSACTIONAL and none", m.IdempotencyKey, m.Lane, m.ListUnsubscribeURL)
		}
	}
	if got := h.get(t, unsubscribed).GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
		t.Errorf("unsubscribed address after Subscribe is %v, want PENDING", got)
	}
	if got := h.get(t, suppressed).GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED {
		t.Errorf("suppressed address after Subscribe is %v, want SUPPRESSED", got)
	}
}

func TestSubscribeThrottlesMail(t *testing.T) {
	h := start(t)
	const addr = "often@example.com"
	for range 5 {
		h.subscribe(t, addr)
	}
	if got := len(h.MailsTo(addr)); got != 1 {
		t.Fatalf("5 sign-ups in one window sent %d mails, want 1", got)
	}
	h.Clock.Advance(10 * time.Minute)
	h.subscribe(t, addr)
	if got := len(h.MailsTo(addr)); got != 2 {
		t.Errorf("a sign-up in the next window sent %d mails in all, want 2 (a resend)", got)
	}
	sub := h.get(t, addr)
	if got, want := sub.GetConsent().GetSignupTime().AsTime(), testenv.StartTime(); !got.Equal(want) {
		t.Errorf("signup time = %v, want the first sign-up %v (a resend keeps the evidence)", got, want)
	}
}

func TestSubscribeConcurrentSameAddress(t *testing.T) {
	h := start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: "race@example.com"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	}
	list, err := h.client.ListSubscribers(admin(), &subscriberv1.ListSubscribersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(list.GetSubscribers()); got != 1 {
		t.Errorf("%d records after 20 concurrent sign-ups, want 1", got)
	}
	var recs int
	for _, k := range h.SubKeys(t) {
		if strings.HasPrefix(k, "sub:rec:") {
			recs++
		}
	}
	if recs != 1 {
		t.Errorf("%d record keys, want 1: %v", recs, h.SubKeys(t))
	}
	if got := len(h.MailsTo("race@example.com")); got != 1 {
		t.Errorf("%d confirmation mails, want 1", got)
	}
}

func TestSubscribeSenderUnavailable(t *testing.T) {
	h := start(t)
	h.Sender.SetUnavailable(true)
	_, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: "later@example.com"})
	wantCode(t, err, codes.Unavailable)
	if strings.Contains(status.Convert(err).Message(), "sendertest") {
		t.Errorf("error leaks internals: %v", err)
	}
	if got := h.get(t, "later@example.com").GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
		t.Errorf("state = %v, want PENDING", got)
	}
	if n := len(h.Sender.Mails()); n != 0 {
		t.Fatalf("%d mails accepted while unavailable", n)
	}
	h.Sender.SetUnavailable(false)
	h.subscribe(t, "later@example.com")
	if n := len(h.MailsTo("later@example.com")); n != 1 {
		t.Errorf("retry sent %d mails, want 1", n)
	}
}

func TestSubscribeInvalid(t *testing.T) {
	h := start(t)
	tests := []struct {
		name   string
		req    *subscriberv1.SubscribeRequest
		fields []string
	}{
		{"empty email", &subscriberv1.SubscribeRequest{}, []string{"email"}},
		{"display name", &subscriberv1.SubscribeRequest{Email: "Ada <ada@example.com>"}, []string{"email"}},
		{"CRLF injection", &subscriberv1.SubscribeRequest{Email: "ada@example.com\r\nBcc: everyone@example.org"}, []string{"email"}},
		{"300-char address", &subscriberv1.SubscribeRequest{Email: strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("d", 58)+".", 4) + "com"}, []string{"email"}},
		{"missing TLD", &subscriberv1.SubscribeRequest{Email: "ada@localhost"}, []string{"email"}},
		{"unicode local part", &subscriberv1.SubscribeRequest{Email: "jürgen@example.com"}, []string{"email"}},
		{"two ats", &subscriberv1.SubscribeRequest{Email: "a@b@c"}, []string{"email"}},
		{"1 MB email", &subscriberv1.SubscribeRequest{Email: strings.Repeat("a", 1<<20) + "@example.com"}, []string{"email"}},
		{"long consent version", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ConsentTextVersion: strings.Repeat("v", 65)}, []string{"consent_text_version"}},
		{"consent version with newline", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ConsentTextVersion: "v1\nX-Evil: 1"}, []string{"consent_text_version"}},
		{"bad client ip", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ClientIp: "999.1.1.1"}, []string{"client_ip"}},
		{"client ip with zone", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ClientIp: "fe80::1%eth0"}, []string{"client_ip"}},
		{"long user agent", &subscriberv1.SubscribeRequest{Email: "ok@example.com", UserAgent: strings.Repeat("u", 513)}, []string{"user_agent"}},
		{"user agent with CR", &subscriberv1.SubscribeRequest{Email: "ok@example.com", UserAgent: "Mozilla\r\nX: y"}, []string{"user_agent"}},
		{"everything wrong", &subscriberv1.SubscribeRequest{Email: "nope", ConsentTextVersion: strings.Repeat("v", 65), ClientIp: "x", UserAgent: "\x00"}, []string{"email", "consent_text_version", "client_ip", "user_agent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.Subscribe(context.Background(), tt.req)
			wantViolations(t, err, tt.fields...)
			if keys := h.SubKeys(t); len(keys) != 0 {
				t.Errorf("Redis holds %v after a rejected request", keys)
			}
			if n := h.Sender.Calls(); n != 0 {
				t.Errorf("sender called %d times", n)
			}
		})
	}
}

func TestSubscribeNormalisesAddress(t *testing.T) {
	h := start(t)
	h.subscribe(t, "Hans@BÜCHER.de")
	h.subscribe(t, "hans@bücher.DE") // same mailbox, other spelling
	list, err := h.client.ListSubscribers(admin(), &subscriberv1.ListSubscribersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetSubscribers()) != 1 {
		t.Fatalf("%d records, want 1: %v", len(list.GetSubscribers()), list)
	}
	sub := list.GetSubscribers()[0]
	if got, want := sub.GetEmail(), "Hans@xn--bcher-kva.de"; got != want {
		t.Errorf("stored email = %q, want %q", got, want)
	}
	if got := h.Sender.Mails()[0].To; got != "Hans@xn--bcher-kva.de" {
		t.Errorf("mail sent to %q, want the punycode address", got)
	}
	for _, k := range h.SubKeys(t) {
		if strings.Contains(strings.ToLower(k), "hans") || strings.Contains(k, "bcher") {
			t.Errorf("key %q holds the address in plain text", k)
		}
	}
	if got := h.get(t, "HANS@bücher.de").GetId(); got != sub.GetId() {
		t.Errorf("GetSubscriber by another spelling = %q, want %q", got, sub.GetId())
	}
}

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
		{"neither", &subscriberv1.GetSubscriberRequest{}, codes.InvalidArgument, []string{"subscriber_id", "email"}},
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
	req := &subscriberv1.ListDueSubscribersRequest{DueTime: timestamppb.New(testenv.StartTime()), PageSize: 2}
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
	if err := h.RDB.HSet(context.Background(), "sub:rec:"+ids[1], "state", "unsubscribed").Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	req := &subscriberv1.ListDueSubscribersRequest{PageSize: 1}
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
