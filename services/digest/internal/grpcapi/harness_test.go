package grpcapi_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/grpcapi"
	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

const (
	adminToken   = "test-admin-token-0123456789"
	serviceToken = "test-service-token-0123456789"
	// maxImportBytes is the harness's import limit, small enough to test
	// "oversized" cheaply.
	maxImportBytes = 256 << 10
)

// now is the harness's clock: the day after the 2026 fixture's list.
var now = time.Date(2026, 6, 13, 9, 0, 0, 0, time.UTC)

type harness struct {
	client digestv1.DigestServiceClient
	store  *redisstore.Store
}

// newHarness serves the paper RPCs over real gRPC on loopback TCP, with the
// platform's server (auth, limits, interceptors) and a private Redis.
func newHarness(t *testing.T) *harness {
	t.Helper()
	rdb := redistest.Start(t, redistest.WithoutAppendOnly()).Client()
	store := redisstore.New(rdb)
	papers, err := library.New(library.Config{Store: store, MaxImportBytes: maxImportBytes, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: adminToken, Service: serviceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:   prometheus.NewRegistry(),
		Authorizer:   authz,
		MaxRecvBytes: 2*maxImportBytes + 64<<10,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The paper RPCs do not touch the digest runs' service.
	digestv1.RegisterDigestServiceServer(srv.GRPC, grpcapi.NewServer(nil, papers, authz.IsOperator))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: adminToken, AllowInsecure: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &harness{client: digestv1.NewDigestServiceClient(conn), store: store}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantCode fails unless err has code and, when field is set, a
// BadRequest violation on field.
func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
	if field == "" {
		return
	}
	if _, ok := grpcerr.FieldViolations(err)[field]; !ok {
		t.Errorf("error %v has field violations %v, want one on %q", err, grpcerr.FieldViolations(err), field)
	}
}

// stored lists every stored paper id, newest featured day first.
func (h *harness) stored(t *testing.T) []string {
	t.Helper()
	var ids []string
	token := ""
	for range 100 {
		resp, err := h.client.ListPapers(context.Background(), &digestv1.ListPapersRequest{PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatalf("ListPapers: %v", err)
		}
		for _, p := range resp.GetPapers() {
			ids = append(ids, p.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			return ids
		}
	}
	t.Fatal("ListPapers never ended")
	return nil
}
