package httpserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/httpserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
)

func serve(t *testing.T, checks ...httpserver.Check) (string, context.CancelFunc, chan error) {
	t.Helper()
	mux := http.NewServeMux()
	httpserver.Routes(mux, metrics.NewRegistry(), logging.Discard(), checks...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	served := make(chan struct{})
	go func() { done <- httpserver.Serve(ctx, lis, mux, time.Second); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	return "http://" + lis.Addr().String(), cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthz(t *testing.T) {
	var healthy = true
	base, _, _ := serve(t, func(context.Context) error {
		if healthy {
			return nil
		}
		return errors.New("redis: connection refused 10.1.2.3")
	})
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	healthy = false
	code, body := get(t, base+"/healthz")
	if code != 503 || strings.Contains(body, "10.1.2.3") {
		t.Errorf("unhealthy: %d %q, want 503 without internals", code, body)
	}
}

func TestMetrics(t *testing.T) {
	base, _, _ := serve(t)
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d, go_goroutines missing", code)
	}
	resp, err := http.Post(base+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
	}
}

func TestShutdown(t *testing.T) {
	_, cancel, done := serve(t)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestServeStopsWhenTheListenerFails checks that when Serve returns because
// its listener failed, connections it had accepted are closed, not served on.
func TestServeStopsWhenTheListenerFails(t *testing.T) {
	mux := http.NewServeMux()
	httpserver.Routes(mux, metrics.NewRegistry(), logging.Discard())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- httpserver.Serve(ctx, lis, mux, time.Second) }()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	url := "http://" + lis.Addr().String() + "/healthz"
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body) // so the connection is kept for reuse
		return err
	}
	if err := get(); err != nil {
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
	if err := get(); err == nil {
		t.Error("a request on an accepted connection succeeded after Serve returned")
	}
}
