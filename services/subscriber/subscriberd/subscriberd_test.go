package subscriberd_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

const (
	adminToken   = "admin-token-for-subscriberd-tests"
	serviceToken = "service-token-for-subscriberd-tests"
)

func testEnv(redisURL, senderAddr, publicURL string) map[string]string {
	return map[string]string{
		"REDIS_URL":                 redisURL,
		"SENDER_GRPC_ADDR":          senderAddr,
		"SUBSCRIBER_PUBLIC_URL":     publicURL,
		"SUBSCRIBER_TOKEN_KEYS":     "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		"SUBSCRIBER_EMAIL_HASH_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)),
		"PAPERROUTE_ADMIN_TOKEN":    adminToken,
		"PAPERROUTE_SERVICE_TOKEN":  serviceToken,
		"SHUTDOWN_GRACE":            "2s",
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// service is one running subscriberd.Run.
type service struct {
	client    subscriberv1.SubscriberServiceClient
	conn      *grpc.ClientConn
	publicURL string
	sender    *sendertest.Fake
	stop      func() error
}

func startService(t *testing.T) *service {
	t.Helper()
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	sender := sendertest.Start(t, serviceToken)
	grpcLis, httpLis := listen(t), listen(t)
	publicURL := "http://" + httpLis.Addr().String()
	getenv := envload.MapGetenv(testEnv(rds.URL(), sender.Addr(), publicURL), nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- subscriberd.Run(ctx, getenv, subscriberd.Deps{Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Run did not return within 10s of cancel")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	// The listener is pre-bound, so the call waits until Run serves.
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer waitCancel()
	hc, err := healthpb.NewHealthClient(conn).Check(waitCtx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", hc, err)
	}
	return &service{client: subscriberv1.NewSubscriberServiceClient(conn), conn: conn, publicURL: publicURL, sender: sender, stop: stop}
}

func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// noRedirects is an HTTP client for which a redirect is a failure to see.
func noRedirects() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func fetch(t *testing.T, c *http.Client, method, link, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, link, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "LifecycleTest/1.0")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestLifecycle walks one subscriber through the whole slice over real gRPC
// and HTTP: subscribe, confirm by link (GET shows, POST changes), be due,
// one-click unsubscribe, be due no more.
func TestLifecycle(t *testing.T) {
	s := startService(t)
	web := noRedirects()
	ctx := context.Background()
	const addr = "ada@example.com"

	getSub := func() *subscriberv1.Subscriber {
		t.Helper()
		res, err := s.client.GetSubscriber(as(adminToken), &subscriberv1.GetSubscriberRequest{Email: addr})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetSubscriber()
	}
	dueIDs := func() map[string]string {
		t.Helper()
		// 07:30 UTC today is inside the default delivery slot.
		y, m, d := time.Now().UTC().Date()
		at := timestamppb.New(time.Date(y, m, d, 7, 30, 0, 0, time.UTC))
		res, err := s.client.ListDueSubscribers(as(serviceToken), &subscriberv1.ListDueSubscribersRequest{DueTime: at})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, d := range res.GetSubscribers() {
			out[d.GetSubscriberId()] = d.GetUnsubscribeUrl()
		}
		return out
	}

	// 1. Subscribe: a neutral answer and a captured confirmation mail.
	res, err := s.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: addr, ConsentTextVersion: "2026-06", ClientIp: "203.0.113.9", UserAgent: "Frontend/3"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetMessage() == "" {
		t.Error("empty Subscribe message")
	}
	// The mail decision is taken off the request path, by the job worker.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.sender.Mails()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mails := s.sender.Mails()
	if len(mails) != 1 || mails[0].To != addr {
		t.Fatalf("mails = %+v, want one confirmation to %s", mails, addr)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(s.publicURL) + `/confirm\?token=[A-Za-z0-9_.%-]+`).FindString(mails[0].Text)
	if link == "" {
		t.Fatalf("no confirm link in:\n%s", mails[0].Text)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")

	// 2. GET shows a form and changes nothing.
	code, body := fetch(t, web, "GET", link, "", "")
	if code != 200 || !strings.Contains(body, `<form method="post" action="confirm">`) || !strings.Contains(body, `value="`+token+`"`) {
		t.Fatalf("GET confirm: %d\n%s", code, body)
	}
	if got := getSub().GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
		t.Fatalf("state after GET = %v, want PENDING", got)
	}

	// 3. POST confirms, with consent evidence.
	code, body = fetch(t, web, "POST", s.publicURL+"/confirm", "application/x-www-form-urlencoded", url.Values{"token": {token}}.Encode())
	if code != 200 || !strings.Contains(body, "subscribed") {
		t.Fatalf("POST confirm: %d\n%s", code, body)
	}
	sub := getSub()
	c := sub.GetConsent()
	if sub.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE {
		t.Fatalf("state = %v, want ACTIVE", sub.GetState())
	}
	gotEvidence := []string{c.GetConsentTextVersion(), c.GetSignupIp(), c.GetSignupUserAgent(), c.GetConfirmIp(), c.GetConfirmUserAgent()}
	if diff := cmp.Diff([]string{"2026-06", "203.0.113.9", "Frontend/3", "127.0.0.1", "LifecycleTest/1.0"}, gotEvidence); diff != "" {
		t.Errorf("consent evidence mismatch (-want +got):\n%s", diff)
	}
	if c.GetSignupTime() == nil || c.GetConfirmTime() == nil || c.GetConfirmTime().AsTime().Before(c.GetSignupTime().AsTime()) {
		t.Errorf("signup %v / confirm %v times wrong", c.GetSignupTime(), c.GetConfirmTime())
	}

	// 4. Due, with a working signed unsubscribe URL.
	unsubURL, ok := dueIDs()[sub.GetId()]
	if !ok || !strings.HasPrefix(unsubURL, s.publicURL+"/unsubscribe?token=") {
		t.Fatalf("due = %v, want %s with an unsubscribe URL", dueIDs(), sub.GetId())
	}

	// 5. RFC 8058 one-click: 200, no redirect, UNSUBSCRIBED via one-click.
	code, body = fetch(t, web, "POST", unsubURL, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
	if code != 200 {
		t.Fatalf("one-click: %d (want 200, no redirect)\n%s", code, body)
	}
	sub = getSub()
	if sub.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED || sub.GetConsent().GetUnsubscribeChannel() != "one-click" {
		t.Fatalf("after one-click: %v", sub)
	}

	// 6. No longer due; a second one-click is still 200 and changes nothing.
	if _, ok := dueIDs()[sub.GetId()]; ok {
		t.Error("still due after unsubscribing")
	}
	code, _ = fetch(t, web, "POST", unsubURL, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
	if code != 200 {
		t.Errorf("second one-click: %d, want 200", code)
	}
	if diff := cmp.Diff(sub, getSub(), protocmp.Transform()); diff != "" {
		t.Errorf("second one-click changed the record (-want +got):\n%s", diff)
	}

	// The HTTP side also serves health and metrics.
	for _, path := range []string{"/healthz", "/metrics"} {
		if code, body := fetch(t, web, "GET", s.publicURL+path, "", ""); code != 200 {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	// And shuts down cleanly.
	if err := s.stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestRunFailsFast(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	deadRedis := listen(t)
	deadAddr := deadRedis.Addr().String()
	_ = deadRedis.Close()

	tests := []struct {
		name    string
		change  map[string]string
		wantErr string
	}{
		{"missing token keys", map[string]string{"SUBSCRIBER_TOKEN_KEYS": ""}, "SUBSCRIBER_TOKEN_KEYS"},
		{"short email hash key", map[string]string{"SUBSCRIBER_EMAIL_HASH_KEY": base64.StdEncoding.EncodeToString([]byte("short"))}, "SUBSCRIBER_EMAIL_HASH_KEY"},
		{"public URL with query", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://example.com/?a=b"}, "SUBSCRIBER_PUBLIC_URL"},
		{"unreachable redis", map[string]string{"REDIS_URL": "redis://" + deadAddr}, "redis"},
		{"bad redis URL", map[string]string{"REDIS_URL": "mysql://x"}, "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(rds.URL(), "127.0.0.1:1", "http://127.0.0.1:1")
			for k, v := range tt.change {
				env[k] = v
			}
			grpcLis, httpLis := listen(t), listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := subscriberd.Run(ctx, envload.MapGetenv(env, nil), subscriberd.Deps{Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run = %v, want an error mentioning %q", err, tt.wantErr)
			}
			if ctx.Err() != nil {
				t.Error("Run did not fail fast")
			}
			// The pre-bound listeners were released.
			if _, err := grpcLis.Accept(); err == nil {
				t.Error("gRPC listener still open")
			}
			if _, err := httpLis.Accept(); err == nil {
				t.Error("HTTP listener still open")
			}
		})
	}
	t.Run("no logger", func(t *testing.T) {
		if err := subscriberd.Run(context.Background(), envload.MapGetenv(testEnv(rds.URL(), "x:1", "http://x"), nil), subscriberd.Deps{}); err == nil {
			t.Error("Run without a logger succeeded")
		}
	})
}
