package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/platform/service"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func spec(redisURL string, setup func(context.Context, *service.Server) error) service.Spec {
	return service.Spec{
		Name:          "testsvc",
		RedisURL:      redisURL,
		Policy:        auth.Policy{},
		Tokens:        auth.Tokens{Admin: "admin", Service: "service"},
		ShutdownGrace: 2 * time.Second,
		Setup:         setup,
	}
}

// waitServing waits until the gRPC health service answers SERVING.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp.GetStatus(), err)
	}
}

func TestRunServesWorkersAndStopsCleanly(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	grpcLis, httpLis := listen(t), listen(t)
	var workerStopped, closed atomic.Bool
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Deps{Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis},
			spec(rds.URL(), func(_ context.Context, s *service.Server) error {
				s.Mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })
				s.WrapHTTP(func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("X-Wrapped", "yes")
						h.ServeHTTP(w, r)
					})
				})
				s.Go("worker", func(ctx context.Context) error {
					close(started)
					<-ctx.Done()
					workerStopped.Store(true)
					return nil
				})
				s.OnClose("peer", func() error {
					if !workerStopped.Load() {
						t.Error("closer ran before the worker stopped")
					}
					closed.Store(true)
					return nil
				})
				return nil
			}))
	}()
	waitServing(t, grpcLis.Addr().String())
	<-started
	for _, path := range []string{"/hello", "/healthz"} {
		resp, err := http.Get("http://" + httpLis.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Wrapped") != "yes" {
			t.Errorf("GET %s = %d, X-Wrapped %q; want 200 through the middleware", path, resp.StatusCode, resp.Header.Get("X-Wrapped"))
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after shutdown, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !workerStopped.Load() || !closed.Load() {
		t.Errorf("worker stopped %v, closer ran %v; want both", workerStopped.Load(), closed.Load())
	}
	if _, err := net.Dial("tcp", grpcLis.Addr().String()); err == nil {
		t.Error("the gRPC listener is still open after Run returned")
	}
}

func TestRunFailures(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	boom := errors.New("boom")
	tests := []struct {
		name    string
		redis   string
		setup   func(context.Context, *service.Server) error
		wantErr string
	}{
		{name: "setup fails", redis: rds.URL(), setup: func(context.Context, *service.Server) error { return boom }, wantErr: "testsvc: boom"},
		{name: "worker fails", redis: rds.URL(), setup: func(_ context.Context, s *service.Server) error {
			s.Go("pump", func(context.Context) error { return boom })
			return nil
		}, wantErr: "testsvc: pump: boom"},
		{name: "redis unreachable", redis: "redis://127.0.0.1:1", setup: func(context.Context, *service.Server) error { return nil }, wantErr: "testsvc: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grpcLis, httpLis := listen(t), listen(t)
			var closed atomic.Bool
			setup := func(ctx context.Context, s *service.Server) error {
				s.OnClose("peer", func() error { closed.Store(true); return nil })
				return tt.setup(ctx, s)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := service.Run(ctx, service.Deps{Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis}, spec(tt.redis, setup))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.redis == rds.URL() && !closed.Load() {
				t.Error("the closers registered by Setup did not run")
			}
			for _, l := range []net.Listener{grpcLis, httpLis} {
				if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
					c.Close()
					t.Errorf("listener %s still open after a failed Run", l.Addr())
				}
			}
		})
	}
}

// TestStopDuringSetup: a stop asked for while the service is still starting
// (Setup waiting on Redis when SIGTERM comes) is a clean stop, not an error.
func TestStopDuringSetup(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inSetup := make(chan struct{})
	setup := func(ctx context.Context, s *service.Server) error {
		close(inSetup)
		<-ctx.Done()
		return fmt.Errorf("create group: %w", ctx.Err())
	}
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Deps{Logger: logging.Discard(), GRPCListener: listen(t), HTTPListener: listen(t)}, spec(rds.URL(), setup))
	}()
	<-inSetup
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after a stop during Setup; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a stop during Setup")
	}
}

func TestCommand(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	grpcLis := listen(t)
	grpcAddr := grpcLis.Addr().String()
	grpcLis.Close()
	run := func(ctx context.Context, getenv func(string) string, deps service.Deps) error {
		if getenv("FAIL") != "" {
			return errors.New("configuration: FAIL is set")
		}
		s := spec(rds.URL(), func(context.Context, *service.Server) error { return nil })
		s.GRPCAddr, s.HTTPAddr = grpcAddr, "127.0.0.1:0"
		return service.Run(ctx, deps, s)
	}
	t.Run("failure reported once, exit 1", func(t *testing.T) {
		var stderr logging.Buffer
		env := envload.MapGetenv(map[string]string{"FAIL": "1", "LOG_FORMAT": "json"}, nil)
		if code := service.Command(context.Background(), "testsvc", run, env, &stderr); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if n := strings.Count(stderr.String(), "FAIL is set"); n != 1 {
			t.Errorf("the error appears %d times in stderr, want once:\n%s", n, stderr.String())
		}
		if !strings.Contains(stderr.String(), `"msg":"testsvc failed"`) {
			t.Errorf("stderr is not one JSON log line naming the service:\n%s", stderr.String())
		}
	})
	t.Run("bad log level", func(t *testing.T) {
		var stderr logging.Buffer
		env := envload.MapGetenv(map[string]string{"LOG_LEVEL": "loud"}, nil)
		if code := service.Command(context.Background(), "testsvc", run, env, &stderr); code != 1 || !strings.Contains(stderr.String(), "loud") {
			t.Errorf("exit code %d, stderr %q; want 1 and the bad level named", code, stderr.String())
		}
	})
	t.Run("clean shutdown, exit 0", func(t *testing.T) {
		var stderr logging.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- service.Command(ctx, "testsvc", run, envload.MapGetenv(map[string]string{"LOG_FORMAT": "json"}, nil), &stderr)
		}()
		waitServing(t, grpcAddr)
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit code %d, want 0; logs:\n%s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), `"msg":"successful shutdown"`) {
			t.Errorf("logs lack the shutdown line:\n%s", stderr.String())
		}
	})
}
