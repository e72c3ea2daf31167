package stack_test

import (
	"context"
	"os"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/platform/tlsconfig"
	"github.com/paperroute/paperroute/platform/tlsconfig/tlstest"
)

// TestWalkingSkeletonOverTLS runs the whole flow with every connection
// encrypted and authenticated: mutual TLS between the services and for the
// operator, and Redis over rediss:// with a client certificate
// (tls-auth-clients yes). Certificates come from a CA made by the test.
func TestWalkingSkeletonOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "paperroute-internal")
	services, operator, redisPair := ca.Issue(t, "paperroute"), ca.Issue(t, "operator"), ca.Issue(t, "redis")
	rdb := redistest.Start(t, redistest.WithTLS(redisPair.CertFile, redisPair.KeyFile, ca.CertFile, true))

	opEnv, err := tlsconfig.Load(context.Background(), envload.MapGetenv(map[string]string{
		"PAPERROUTE_GRPC_TLS_CA":   ca.CertFile,
		"PAPERROUTE_GRPC_TLS_CERT": operator.CertFile,
		"PAPERROUTE_GRPC_TLS_KEY":  operator.KeyFile,
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	opTLS, err := opEnv.GRPCClient()
	if err != nil {
		t.Fatal(err)
	}
	w := startWorldWith(t, worldOptions{
		redisURL: rdb.TLSURL() + "/0",
		extraEnv: map[string]string{
			"REDIS_TLS_CA":                  ca.CertFile,
			"REDIS_TLS_CERT":                services.CertFile,
			"REDIS_TLS_KEY":                 services.KeyFile,
			"PAPERROUTE_GRPC_TLS_CERT":      services.CertFile,
			"PAPERROUTE_GRPC_TLS_KEY":       services.KeyFile,
			"PAPERROUTE_GRPC_TLS_CLIENT_CA": ca.CertFile,
			"PAPERROUTE_GRPC_TLS_CA":        ca.CertFile,
		},
		clientTLS: opTLS,
	})
	ctx := ctxT(t)
	const reader = "tls-reader@example.org"

	// Subscribe (subscriber → sender over mutual TLS for the confirmation
	// mail), confirm, import, run: digest → subscriber and digest → sender
	// over mutual TLS, and every service's Redis over rediss://.
	w.subscribeAndConfirm(ctx, reader)
	papers, err := os.ReadFile("../devmode/sample/hf-daily-papers-2026-06-12.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dig.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: papers}); err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	run := w.runDigest(ctx, "2026-06-12")
	if run.GetQueuedCount() != 1 {
		t.Fatalf("run queued %d digests, want 1", run.GetQueuedCount())
	}
	w.waitDigests(ctx, reader, 1)

	// Nothing gets in without a certificate from the CA, even with the
	// admin token.
	for name, cfg := range map[string]*tlsconfig.Env{"plaintext": nil, "TLS without a client certificate": {GRPCCA: ca.CertFile}} {
		var opts []grpcclient.Option
		if cfg != nil {
			c, err := cfg.GRPCClient()
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, grpcclient.WithTLS(c))
		}
		conn, err := grpcclient.New(w.addrs.SenderGRPC, adminToken, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = senderv1.NewSenderServiceClient(conn).GetQueueStats(ctx, &senderv1.GetQueueStatsRequest{})
		conn.Close()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s GetQueueStats = %v, want Unavailable (handshake refused)", name, err)
		}
	}
}
