package grpcserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
)

// TestTraceCrossesTheCall checks that a call made with a parent span in
// the context is traced on both sides in the parent's trace: the client
// sends the W3C trace context and the server continues it.
func TestTraceCrossesTheCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	authz, _ := auth.NewAuthorizer(auth.Policy{"/grpc.testing.TestService/EmptyCall": auth.Internal}, auth.Tokens{Admin: "a", Service: "s"})
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	testgrpc.RegisterTestServiceServer(srv.GRPC, &testService{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() { cancel(); <-done }()
	conn, err := grpcclient.New(lis.Addr().String(), "s", grpcclient.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	pctx, parent := tp.Tracer("test").Start(ctx, "parent")
	if _, err := healthpb.NewHealthClient(conn).Check(pctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(pctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	want := parent.SpanContext().TraceID()
	// The server span ends just after the reply is written: wait for it.
	// The health check, served before, would have ended by then too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		kinds := map[trace.SpanKind]bool{}
		health := 0
		for _, s := range exp.GetSpans() {
			switch {
			case s.SpanContext.TraceID() != want:
			case s.Name == "grpc.testing.TestService/EmptyCall":
				kinds[s.SpanKind] = true
			case s.Name == "grpc.health.v1.Health/Check" && s.SpanKind == trace.SpanKindServer:
				health++
			}
		}
		if kinds[trace.SpanKindClient] && kinds[trace.SpanKindServer] {
			if health != 0 {
				t.Errorf("%d server spans for health checks, want none", health)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("EmptyCall spans in the parent's trace by kind = %v, want client and server; all spans: %v", kinds, exp.GetSpans())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
