package grpcserver_test

import (
	"context"
	"net"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
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
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(pctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	want := parent.SpanContext().TraceID()
	kinds := map[trace.SpanKind]bool{}
	for _, s := range exp.GetSpans() {
		if s.Name == "grpc.testing.TestService/EmptyCall" && s.SpanContext.TraceID() == want {
			kinds[s.SpanKind] = true
		}
	}
	if !kinds[trace.SpanKindClient] || !kinds[trace.SpanKindServer] {
		t.Errorf("EmptyCall spans in the parent's trace by kind = %v, want client and server; all spans: %v", kinds, exp.GetSpans())
	}
}
