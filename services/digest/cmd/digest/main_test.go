package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/redistest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestRunStartsAndShutsDown(t *testing.T) {
	redis := redistest.Start(t, redistest.WithoutAppendOnly())
	httpAddr := freeAddr(t)
	getenv := envload.MapGetenv(map[string]string{
		"REDIS_URL":                redis.URL(),
		"PAPERROUTE_ADMIN_TOKEN":   "admin-token-for-tests",
		"PAPERROUTE_SERVICE_TOKEN": "service-token-for-tests",
		"DIGEST_GRPC_ADDR":         freeAddr(t),
		"DIGEST_HTTP_ADDR":         httpAddr,
		"DIGEST_POSTAL_ADDRESS":    "Example Ltd, 1 Road, Town",
		"LOG_FORMAT":               "text",
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, getenv, &bytes.Buffer{}, &stderr) }()

	// Wait until the service answers, then stop it as a signal would.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", httpAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not listen on %s: %v", httpAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil after shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after ctx was cancelled")
	}
	if !strings.Contains(stderr.String(), "successful shutdown") {
		t.Errorf("logs lack \"successful shutdown\":\n%s", stderr.String())
	}
}

func TestRunReportsBadConfig(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), envload.MapGetenv(map[string]string{"LOG_FORMAT": "text"}, nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "PAPERROUTE_ADMIN_TOKEN") {
		t.Errorf("run = %v, want an error naming PAPERROUTE_ADMIN_TOKEN", err)
	}
	if !strings.Contains(stderr.String(), "PAPERROUTE_ADMIN_TOKEN") {
		t.Errorf("stderr does not report the error:\n%s", stderr.String())
	}
	err = run(context.Background(), envload.MapGetenv(map[string]string{"LOG_LEVEL": "loud"}, nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "loud") {
		t.Errorf("run with a bad LOG_LEVEL = %v, stderr %q; want the error reported", err, stderr.String())
	}
}
