package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/platform/tlsconfig"
	"github.com/paperroute/paperroute/platform/tlsconfig/tlstest"
)

func load(t *testing.T, env map[string]string) tlsconfig.Env {
	t.Helper()
	e, err := tlsconfig.Load(context.Background(), envload.MapGetenv(env, nil))
	if err != nil {
		t.Fatalf("Load(%v): %v", env, err)
	}
	return e
}

// serve runs a paperroute gRPC server (grpcserver, as every service) with
// the server TLS of env on a loopback port until the test ends.
func serve(t *testing.T, e tlsconfig.Env) string {
	t.Helper()
	cfg, err := e.GRPCServer()
	if err != nil {
		t.Fatal(err)
	}
	authz, err := auth.NewAuthorizer(auth.Policy{}, auth.Tokens{Admin: "admin-token", Service: "service-token"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
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
	return lis.Addr().String()
}

// check calls Health/Check through grpcclient with clientTLS and returns
// the error and the server certificate's serial seen by the client.
func check(t *testing.T, addr string, clientTLS *tls.Config) (serial string, err error) {
	t.Helper()
	conn, err := grpcclient.New(addr, "service-token", grpcclient.WithTLS(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(false))
	if err != nil {
		return "", err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v", resp.GetStatus())
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
		serial = info.State.PeerCertificates[0].SerialNumber.String()
	}
	return serial, nil
}

func TestGRPCServerTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "internal")
	srvPair := ca.Issue(t, "sender")
	other := tlstest.NewCA(t, "other")
	server := load(t, map[string]string{"PAPERROUTE_GRPC_TLS_CERT": srvPair.CertFile, "PAPERROUTE_GRPC_TLS_KEY": srvPair.KeyFile})
	addr := serve(t, server)

	t.Run("client trusting the CA", func(t *testing.T) {
		cfg, err := load(t, map[string]string{"PAPERROUTE_GRPC_TLS_CA": ca.CertFile}).GRPCClient()
		if err != nil {
			t.Fatal(err)
		}
		serial, err := check(t, addr, cfg)
		if err != nil {
			t.Fatalf("Check over TLS: %v", err)
		}
		if serial != srvPair.Serial.String() {
			t.Errorf("server certificate serial = %s, want %s", serial, srvPair.Serial)
		}
	})
	t.Run("client trusting another CA", func(t *testing.T) {
		cfg, err := load(t, map[string]string{"PAPERROUTE_GRPC_TLS_CA": other.CertFile}).GRPCClient()
		if err != nil {
			t.Fatal(err)
		}
		_, err = check(t, addr, cfg)
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Check = %v, want Unavailable naming the certificate", err)
		}
	})
	t.Run("plaintext client", func(t *testing.T) {
		_, err := check(t, addr, nil)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext Check against a TLS server = %v, want Unavailable", err)
		}
	})
}

func TestGRPCMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "internal")
	srvPair, clientPair := ca.Issue(t, "sender"), ca.Issue(t, "digest")
	strangerCA := tlstest.NewCA(t, "stranger")
	stranger := strangerCA.Issue(t, "mallory")
	addr := serve(t, load(t, map[string]string{
		"PAPERROUTE_GRPC_TLS_CERT":      srvPair.CertFile,
		"PAPERROUTE_GRPC_TLS_KEY":       srvPair.KeyFile,
		"PAPERROUTE_GRPC_TLS_CLIENT_CA": ca.CertFile,
	}))
	for _, tt := range []struct {
		name   string
		env    map[string]string
		wantOK bool
	}{
		{"client certificate from the CA", map[string]string{"PAPERROUTE_GRPC_TLS_CA": ca.CertFile,
			"PAPERROUTE_GRPC_TLS_CERT": clientPair.CertFile, "PAPERROUTE_GRPC_TLS_KEY": clientPair.KeyFile}, true},
		{"no client certificate", map[string]string{"PAPERROUTE_GRPC_TLS_CA": ca.CertFile}, false},
		{"client certificate from another CA", map[string]string{"PAPERROUTE_GRPC_TLS_CA": ca.CertFile,
			"PAPERROUTE_GRPC_TLS_CERT": stranger.CertFile, "PAPERROUTE_GRPC_TLS_KEY": stranger.KeyFile}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.env).GRPCClient()
			if err != nil {
				t.Fatal(err)
			}
			_, err = check(t, addr, cfg)
			if tt.wantOK && err != nil {
				t.Errorf("Check = %v, want SERVING", err)
			}
			if !tt.wantOK && status.Code(err) != codes.Unavailable {
				t.Errorf("Check = %v, want Unavailable (handshake refused)", err)
			}
		})
	}
}

// TestCertificateRotation replaces the server's certificate files while it
// runs: new connections get the new certificate, without a restart.
func TestCertificateRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "internal")
	first := ca.Issue(t, "sender")
	addr := serve(t, load(t, map[string]string{"PAPERROUTE_GRPC_TLS_CERT": first.CertFile, "PAPERROUTE_GRPC_TLS_KEY": first.KeyFile}))
	client, err := load(t, map[string]string{"PAPERROUTE_GRPC_TLS_CA": ca.CertFile}).GRPCClient()
	if err != nil {
		t.Fatal(err)
	}
	if serial, err := check(t, addr, client); err != nil || serial != first.Serial.String() {
		t.Fatalf("before rotation: serial %s, err %v; want %s", serial, err, first.Serial)
	}
	// Make sure the new files get a later modification time than the old.
	time.Sleep(10 * time.Millisecond)
	second := ca.IssueTo(t, "sender", first.CertFile, first.KeyFile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		serial, err := check(t, addr, client)
		if err != nil {
			t.Fatalf("during rotation: %v", err)
		}
		if serial == second.Serial.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still presents serial %s 10s after rotation to %s", serial, second.Serial)
		}
		time.Sleep(100 * time.Millisecond) // the server re-checks its files at most once a second
	}
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "internal")
	pair := ca.Issue(t, "sender")
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"cert without key", map[string]string{"PAPERROUTE_GRPC_TLS_CERT": pair.CertFile}, []string{"PAPERROUTE_GRPC_TLS_CERT and PAPERROUTE_GRPC_TLS_KEY"}},
		{"client CA without a server certificate", map[string]string{"PAPERROUTE_GRPC_TLS_CLIENT_CA": ca.CertFile}, []string{"PAPERROUTE_GRPC_TLS_CLIENT_CA needs"}},
		{"missing CA file", map[string]string{"PAPERROUTE_GRPC_TLS_CA": pair.CertFile + ".nope"}, []string{"PAPERROUTE_GRPC_TLS_CA", "no such file"}},
		{"CA file that is a key", map[string]string{"REDIS_TLS_CA": pair.KeyFile}, []string{"REDIS_TLS_CA", "no PEM certificate"}},
		{"key that does not match", map[string]string{"PAPERROUTE_GRPC_TLS_CERT": pair.CertFile, "PAPERROUTE_GRPC_TLS_KEY": ca.Issue(t, "other").KeyFile}, []string{"PAPERROUTE_GRPC_TLS_CERT/_KEY", "private key does not match"}},
		{"redis cert without key, and a bad CA", map[string]string{"REDIS_TLS_CERT": pair.CertFile, "PAPERROUTE_GRPC_TLS_KEY": pair.KeyFile},
			[]string{"REDIS_TLS_CERT and REDIS_TLS_KEY", "PAPERROUTE_GRPC_TLS_CERT and PAPERROUTE_GRPC_TLS_KEY"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsconfig.Load(context.Background(), envload.MapGetenv(tt.env, nil))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("nothing set is plaintext", func(t *testing.T) {
		e := load(t, nil)
		for name, f := range map[string]func() (*tls.Config, error){"GRPCServer": e.GRPCServer, "GRPCClient": e.GRPCClient, "Redis": e.Redis} {
			cfg, err := f()
			if cfg != nil || err != nil {
				t.Errorf("%s() = %v, %v; want nil, nil", name, cfg, err)
			}
		}
	})
}
