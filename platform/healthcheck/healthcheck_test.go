package healthcheck_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/healthcheck"
	"github.com/paperroute/paperroute/platform/tlsconfig"
	"github.com/paperroute/paperroute/platform/tlsconfig/tlstest"
)

// startGRPC serves grpc.health.v1 on a loopback port: the whole server
// SERVING, "paperroute.sender.v1.SenderService" NOT_SERVING.
func startGRPC(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("paperroute.sender.v1.SenderService", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestMain_exitStatus(t *testing.T) {
	grpcAddr := startGRPC(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
	}))
	defer web.Close()
	down := closedAddr(t)

	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string
	}{
		{"grpc serving", []string{"grpc://" + grpcAddr}, 0, ""},
		{"grpc and http healthy", []string{"grpc://" + grpcAddr, web.URL + "/healthz"}, 0, ""},
		{"grpc service not serving", []string{"grpc://" + grpcAddr + "/paperroute.sender.v1.SenderService"}, 1, "NOT_SERVING"},
		{"grpc unknown service", []string{"grpc://" + grpcAddr + "/nope.v1.Nope"}, 1, "NotFound"},
		{"grpc nothing listening", []string{"-timeout", "1s", "grpc://" + down}, 1, down},
		{"http 503", []string{web.URL + "/broken"}, 1, "503"},
		{"one of two unhealthy", []string{"grpc://" + grpcAddr, web.URL + "/broken"}, 1, "503"},
		{"http nothing listening", []string{"http://" + down + "/healthz"}, 1, down},
		{"unknown scheme", []string{"tcp://" + grpcAddr}, 1, "scheme must be grpc or http"},
		{"not a URL", []string{"127.0.0.1:50051"}, 1, "is not grpc://host:port"},
		{"no target", nil, 2, "usage"},
		{"bad flag", []string{"-nope"}, 2, "-nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got := healthcheck.Main(context.Background(), tt.args, func(string) string { return "" }, &stderr)
			if got != tt.want {
				t.Errorf("Main(%q) = %d, want %d (stderr %q)", tt.args, got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("Main(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantErr)
			}
		})
	}
}

// TestMain_TLS probes a server that requires mutual TLS, with the
// environment the service itself runs with.
func TestMain_TLS(t *testing.T) {
	ca := tlstest.NewCA(t, "internal")
	pair := ca.Issue(t, "sender")
	serviceEnv := map[string]string{
		"PAPERROUTE_GRPC_TLS_CERT":      pair.CertFile,
		"PAPERROUTE_GRPC_TLS_KEY":       pair.KeyFile,
		"PAPERROUTE_GRPC_TLS_CLIENT_CA": ca.CertFile,
		"PAPERROUTE_GRPC_TLS_CA":        ca.CertFile,
	}
	tlsEnv, err := tlsconfig.Load(context.Background(), envload.MapGetenv(serviceEnv, nil))
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := tlsEnv.GRPCServer()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	target := "grpc://" + lis.Addr().String()

	other := tlstest.NewCA(t, "other")
	for _, tt := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"the service's own environment", serviceEnv, 0},
		{"own certificate, no CA: chain not checked", map[string]string{"PAPERROUTE_GRPC_TLS_CERT": pair.CertFile, "PAPERROUTE_GRPC_TLS_KEY": pair.KeyFile}, 0},
		{"plaintext against TLS", nil, 1},
		{"server not signed by the configured CA", map[string]string{"PAPERROUTE_GRPC_TLS_CERT": pair.CertFile, "PAPERROUTE_GRPC_TLS_KEY": pair.KeyFile, "PAPERROUTE_GRPC_TLS_CA": other.CertFile}, 1},
		{"broken TLS settings", map[string]string{"PAPERROUTE_GRPC_TLS_CERT": pair.CertFile}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got := healthcheck.Main(context.Background(), []string{"-timeout", "2s", target}, envload.MapGetenv(tt.env, nil), &stderr)
			if got != tt.want {
				t.Errorf("Main = %d, want %d (stderr %q)", got, tt.want, stderr.String())
			}
		})
	}
}
