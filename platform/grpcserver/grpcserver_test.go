package grpcserver_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
)

const (
	adminToken   = "admin-token-for-tests"
	serviceToken = "service-token-for-tests"
)

// testService is grpc's own interop test service: EmptyCall is OPERATOR,
// UnaryCall is INTERNAL and panics or blocks on request, StreamingOutputCall
// is PUBLIC, and every other method has no policy.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	started chan struct{}
	release chan struct{}
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	switch string(req.GetPayload().GetBody()) {
	case "panic":
		panic("boom with secret internals")
	case "block":
		close(s.started)
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &testgrpc.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (s *testService) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	return stream.Send(&testgrpc.StreamingOutputCallResponse{})
}

func start(t *testing.T, grace time.Duration, maxRecv int) (*testService, *grpcserver.Server, *grpc.ClientConn, context.CancelFunc, chan error, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	log, err := logging.New(&logs, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	authz, err := auth.NewAuthorizer(auth.Policy{
		"/grpc.testing.TestService/EmptyCall":           auth.Operator,
		"/grpc.testing.TestService/UnaryCall":           auth.Internal,
		"/grpc.testing.TestService/StreamingOutputCall": auth.Public,
	}, auth.Tokens{Admin: adminToken, Service: serviceToken})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	srv, err := grpcserver.New(grpcserver.Config{Logger: log, Registerer: reg, Authorizer: authz, ShutdownGrace: grace, MaxRecvBytes: maxRecv})
	if err != nil {
		t.Fatal(err)
	}
	svc := &testService{started: make(chan struct{}), release: make(chan struct{})}
	testgrpc.RegisterTestServiceServer(srv.GRPC, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	served := make(chan struct{})
	go func() { done <- srv.Serve(ctx, lis); close(served) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-served
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	_ = reg
	return svc, srv, conn, cancel, done, &logs
}

func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func TestAuthPolicy(t *testing.T) {
	_, _, conn, _, _, _ := start(t, time.Second, 0)
	client := testgrpc.NewTestServiceClient(conn)
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func(ctx context.Context) error
		token    string
		wantCode codes.Code
	}{
		{"operator method, admin token", emptyCall(client), adminToken, codes.OK},
		{"operator method, no token", emptyCall(client), "", codes.Unauthenticated},
		{"operator method, wrong token", emptyCall(client), "guess", codes.Unauthenticated},
		{"operator method, service token", emptyCall(client), serviceToken, codes.PermissionDenied},
		{"internal method, service token", unaryCall(client, "hi"), serviceToken, codes.OK},
		{"internal method, admin token", unaryCall(client, "hi"), adminToken, codes.PermissionDenied},
		{"public method, no token", streamCall(client), "", codes.OK},
		{"method without policy", func(ctx context.Context) error {
			_, err := client.CacheableUnaryCall(ctx, &testgrpc.SimpleRequest{})
			return err
		}, adminToken, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(withToken(ctx, tt.token))
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
		})
	}
}

func emptyCall(c testgrpc.TestServiceClient) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.EmptyCall(ctx, &testgrpc.Empty{})
		return err
	}
}

func unaryCall(c testgrpc.TestServiceClient, body string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte(body)}})
		return err
	}
}

func streamCall(c testgrpc.TestServiceClient) func(context.Context) error {
	return func(ctx context.Context) error {
		s, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
}

func TestHealthAndReflectionArePublic(t *testing.T) {
	_, _, conn, _, _, _ := start(t, time.Second, 0)
	ctx := context.Background()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	got := strings.Join(names, ",")
	for _, want := range []string{"grpc.testing.TestService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(got, want) {
			t.Errorf("reflection lists %s, missing %s", got, want)
		}
	}
}

func TestPanicIsRecoveredAndHidden(t *testing.T) {
	_, _, conn, _, _, logs := start(t, time.Second, 0)
	client := testgrpc.NewTestServiceClient(conn)
	err := unaryCall(client, "panic")(withToken(context.Background(), serviceToken))
	st := status.Convert(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
		t.Errorf("panic surfaced as %v %q, want Internal without internals", st.Code(), st.Message())
	}
	if !strings.Contains(logs.String(), "boom with secret internals") {
		t.Error("panic not logged")
	}
	// The server is still up.
	if err := unaryCall(client, "after")(withToken(context.Background(), serviceToken)); err != nil {
		t.Errorf("call after panic: %v", err)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	_, _, conn, _, _, _ := start(t, time.Second, 1024)
	client := testgrpc.NewTestServiceClient(conn)
	err := unaryCall(client, strings.Repeat("x", 4096))(withToken(context.Background(), serviceToken))
	if got := status.Code(err); got != codes.ResourceExhausted {
		t.Errorf("oversized request: %v, want ResourceExhausted", err)
	}
}

func TestGracefulStopLetsInFlightCallsFinish(t *testing.T) {
	svc, srv, conn, cancel, done, _ := start(t, 10*time.Second, 0)
	client := testgrpc.NewTestServiceClient(conn)
	callErr := make(chan error, 1)
	go func() { callErr <- unaryCall(client, "block")(withToken(context.Background(), serviceToken)) }()
	<-svc.started

	cancel() // shutdown begins while the call is in flight
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := srv.Health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("health did not go NOT_SERVING on shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a call was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(svc.release)
	if err := <-callErr; err != nil {
		t.Errorf("in-flight call failed: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil after a clean shutdown", err)
	}
}

func TestGracefulStopHasADeadline(t *testing.T) {
	svc, _, conn, cancel, done, _ := start(t, 200*time.Millisecond, 0)
	client := testgrpc.NewTestServiceClient(conn)
	callErr := make(chan error, 1)
	go func() { callErr <- unaryCall(client, "block")(withToken(context.Background(), serviceToken)) }()
	<-svc.started
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the grace period")
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("Serve returned after %v, before the grace period", elapsed)
	}
	if err := <-callErr; err == nil {
		t.Error("call blocked past the grace period succeeded, want it cut off")
	}
}

func TestMetricsCountCalls(t *testing.T) {
	var logs bytes.Buffer
	log, _ := logging.New(&logs, "json", "info")
	authz, _ := auth.NewAuthorizer(auth.Policy{"/grpc.testing.TestService/EmptyCall": auth.Public}, auth.Tokens{Admin: "a", Service: "s"})
	reg := metrics.NewRegistry()
	srv, err := grpcserver.New(grpcserver.Config{Logger: log, Registerer: reg, Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	testgrpc.RegisterTestServiceServer(srv.GRPC, &testService{})
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() { cancel(); <-done }()
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, "grpc_server_handled_total")
	if err != nil || n == 0 {
		t.Fatalf("grpc_server_handled_total series = %d, %v", n, err)
	}
	if !strings.Contains(logs.String(), `"grpc.method":"EmptyCall"`) {
		t.Errorf("finished call not logged: %s", logs.String())
	}
}

// TestServeStopsWhenTheListenerFails checks that when Serve returns because
// its listener failed, it does not leave the server running behind it:
// connections it had accepted are closed, not served on.
func TestServeStopsWhenTheListenerFails(t *testing.T) {
	authz, _ := auth.NewAuthorizer(auth.Policy{"/grpc.testing.TestService/EmptyCall": auth.Public}, auth.Tokens{Admin: "a", Service: "s"})
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.GRPC.Stop)
	testgrpc.RegisterTestServiceServer(srv.GRPC, &testService{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	if err := emptyCall(client)(context.Background()); err != nil {
		t.Fatal(err)
	}

	_ = lis.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve = nil after its listener failed, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its listener failed")
	}
	callCtx, callCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer callCancel()
	if err := emptyCall(client)(callCtx); err == nil {
		t.Error("a call on an accepted connection succeeded after Serve returned")
	}
}
