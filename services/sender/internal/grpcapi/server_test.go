package grpcapi_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/grpcapi"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

const (
	adminToken   = "admin-token"
	serviceToken = "service-token"
)

type env struct {
	rdb     redis.UniversalClient
	addr    string
	service senderv1.SenderServiceClient
	admin   senderv1.SenderServiceClient
}

// newEnv serves the API through the platform gRPC server (real auth
// interceptors) on loopback TCP, backed by a private redis-server.
func newEnv(t *testing.T) *env {
	t.Helper()
	r := redistest.Start(t)
	rdb := r.Client()
	store := redisstore.New(rdb, 2)
	ctx, cancel := context.WithCancel(context.Background())
	if err := store.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: adminToken, Service: serviceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz, MaxRecvBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	senderv1.RegisterSenderServiceServer(srv.GRPC, grpcapi.NewServer(queue.NewService(store, nil)))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	e := &env{rdb: rdb, addr: lis.Addr().String()}
	e.service = client(t, e.addr, serviceToken)
	e.admin = client(t, e.addr, adminToken)
	return e
}

func client(t *testing.T, addr, token string) senderv1.SenderServiceClient {
	t.Helper()
	conn, err := grpcclient.New(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return senderv1.NewSenderServiceClient(conn)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	policy := grpcapi.Policy()
	for _, m := range senderv1.SenderService_ServiceDesc.Methods {
		full := "/" + senderv1.SenderService_ServiceDesc.ServiceName + "/" + m.MethodName
		if _, ok := policy[full]; !ok {
			t.Errorf("%s has no policy entry", full)
		}
	}
	if n := len(senderv1.SenderService_ServiceDesc.Streams); n != 0 {
		t.Errorf("the service has %d streaming methods this test does not cover", n)
	}
	if len(policy) != len(senderv1.SenderService_ServiceDesc.Methods) {
		t.Errorf("policy lists %d methods, the service has %d", len(policy), len(senderv1.SenderService_ServiceDesc.Methods))
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	none := client(t, e.addr, "")
	wrong := client(t, e.addr, "not-a-token")
	clients := map[string]senderv1.SenderServiceClient{"none": none, "wrong": wrong, "admin": e.admin, "service": e.service}

	calls := map[string]func(senderv1.SenderServiceClient) error{
		"PutContent": func(c senderv1.SenderServiceClient) error {
			_, err := c.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{Subject: "s", TextBody: "t"}})
			return err
		},
		"Enqueue": func(c senderv1.SenderServiceClient) error {
			_, err := c.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{{
				IdempotencyKey: "auth:1", Recipient: "a@example.com", Lane: senderv1.Lane_LANE_TRANSACTIONAL,
				Content: &senderv1.Content{Subject: "s", TextBody: "t"},
			}}})
			return err
		},
		"GetMessage": func(c senderv1.SenderServiceClient) error {
			_, err := c.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: "auth:none"})
			return err
		},
		"GetQueueStats": func(c senderv1.SenderServiceClient) error {
			_, err := c.GetQueueStats(ctx, &senderv1.GetQueueStatsRequest{})
			return err
		},
	}
	// Unknown ids are NotFound: past auth.
	want := map[string]map[string]codes.Code{
		"PutContent":    {"none": codes.Unauthenticated, "wrong": codes.Unauthenticated, "admin": codes.PermissionDenied, "service": codes.OK},
		"Enqueue":       {"none": codes.Unauthenticated, "wrong": codes.Unauthenticated, "admin": codes.PermissionDenied, "service": codes.OK},
		"GetMessage":    {"none": codes.Unauthenticated, "wrong": codes.Unauthenticated, "admin": codes.NotFound, "service": codes.NotFound},
		"GetQueueStats": {"none": codes.Unauthenticated, "wrong": codes.Unauthenticated, "admin": codes.OK, "service": codes.PermissionDenied},
	}
	got := map[string]map[string]codes.Code{}
	for method, call := range calls {
		got[method] = map[string]codes.Code{}
		for who, c := range clients {
			got[method][who] = status.Code(call(c))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("codes by method and caller (-want +got):\n%s", diff)
	}
}

func TestGetMessageUnknownIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	for name, req := range map[string]*senderv1.GetMessageRequest{
		"by id":  {MessageId: strings.Repeat("ab", 16)},
		"by key": {IdempotencyKey: "never-queued"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.admin.GetMessage(ctx, req)
			if status.Code(err) != codes.NotFound {
				t.Errorf("GetMessage = %v, want NotFound", err)
			}
		})
	}
}

func TestPutContentIsContentAddressed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	c := &senderv1.Content{Subject: "Hi {{name}}", HtmlBody: "<p>{{name}}</p>", TextBody: "{{name}}"}
	a, err := e.service.PutContent(ctx, &senderv1.PutContentRequest{Content: c})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.service.PutContent(ctx, &senderv1.PutContentRequest{Content: c})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.service.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{Subject: "Hi {{name}}", HtmlBody: "<p>{{name}}</p>"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.GetContentId() != b.GetContentId() || a.GetContentId() == other.GetContentId() || len(a.GetContentId()) != 64 {
		t.Errorf("content ids %q, %q, %q: want equal content to share a 64-hex id and different content not to", a.GetContentId(), b.GetContentId(), other.GetContentId())
	}
	ttl, err := e.rdb.TTL(ctx, redisstore.ContentKey(a.GetContentId())).Result()
	if err != nil || ttl < 29*24*time.Hour {
		t.Errorf("content TTL = %v, %v; want about 30 days", ttl, err)
	}
}

func TestEnqueueRefreshesAndRequiresContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	put, err := e.service.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{Subject: "s", TextBody: "{{a}}"}})
	if err != nil {
		t.Fatal(err)
	}
	key := redisstore.ContentKey(put.GetContentId())
	if err := e.rdb.Expire(ctx, key, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = e.service.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{{
		IdempotencyKey: "k", Recipient: "a@example.com", Lane: senderv1.Lane_LANE_BULK,
		ContentId: put.GetContentId(), Variables: map[string]string{"a": "1"}, ListUnsubscribeUrl: "https://x.example/u",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if ttl := e.rdb.TTL(ctx, key).Val(); ttl < 29*24*time.Hour {
		t.Errorf("content TTL after Enqueue = %v, want it refreshed to about 30 days", ttl)
	}
}
