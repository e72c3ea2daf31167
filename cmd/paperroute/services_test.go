package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/digest/digestd"
	"github.com/paperroute/paperroute/services/sender/senderd"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

// The three service binaries are `os.Exit(service.Main(name, <svc>d.Run))`;
// this runs each entry point exactly as its main does, minus the signals.
func TestServiceBinaries(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	services := []struct {
		name   string
		run    service.RunFunc
		prefix string
		extra  map[string]string
	}{
		{name: "sender", run: senderd.Run, prefix: "SENDER", extra: map[string]string{"SENDER_SMTP_ADDR": freeAddr(t)}},
		{name: "subscriber", run: subscriberd.Run, prefix: "SUBSCRIBER", extra: map[string]string{
			"SUBSCRIBER_TOKEN_KEYS": "k1:" + key(1), "SUBSCRIBER_EMAIL_HASH_KEY": key(2)}},
		{name: "digest", run: digestd.Run, prefix: "DIGEST", extra: map[string]string{"DIGEST_POSTAL_ADDRESS": "Example Ltd, 1 Road, Town", "DIGEST_SOURCES": "off"}},
	}
	for _, svc := range services {
		t.Run(svc.name, func(t *testing.T) {
			grpcAddr := freeAddr(t)
			env := map[string]string{
				"REDIS_URL":                rds.URL(),
				"PAPERROUTE_ADMIN_TOKEN":   "admin",
				"PAPERROUTE_SERVICE_TOKEN": "service",
				svc.prefix + "_GRPC_ADDR":  grpcAddr,
				svc.prefix + "_HTTP_ADDR":  freeAddr(t),
				"LOG_FORMAT":               "json",
			}
			for k, v := range svc.extra {
				env[k] = v
			}

			t.Run("bad configuration", func(t *testing.T) {
				var stderr logging.Buffer
				bad := envload.MapGetenv(map[string]string{"PAPERROUTE_ADMIN_TOKEN": ""}, envload.MapGetenv(env, nil))
				if code := service.Command(context.Background(), svc.name, svc.run, bad, &stderr); code != 1 {
					t.Errorf("exit code %d, want 1", code)
				}
				if n := strings.Count(stderr.String(), "\n"); n != 1 || !strings.Contains(stderr.String(), "PAPERROUTE_ADMIN_TOKEN") {
					t.Errorf("stderr has %d lines, want one naming PAPERROUTE_ADMIN_TOKEN:\n%s", n, stderr.String())
				}
			})
			t.Run("serves until stopped", func(t *testing.T) {
				var stderr logging.Buffer
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan int, 1)
				go func() { done <- service.Command(ctx, svc.name, svc.run, envload.MapGetenv(env, nil), &stderr) }()
				waitServing(t, grpcAddr)
				cancel()
				select {
				case code := <-done:
					if code != 0 {
						t.Fatalf("exit code %d after SIGTERM, want 0; logs:\n%s", code, stderr.String())
					}
				case <-time.After(20 * time.Second):
					t.Fatal("the service did not stop within 20s")
				}
				if !strings.Contains(stderr.String(), `"msg":"successful shutdown"`) {
					t.Errorf("logs lack the shutdown line:\n%s", stderr.String())
				}
			})
		})
	}
}

// waitServing waits until the gRPC health service at addr answers SERVING.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of %s = %v, %v; want SERVING", addr, resp.GetStatus(), err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
