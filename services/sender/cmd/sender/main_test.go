package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
)

func TestRunRefusesBadConfiguration(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), envload.MapGetenv(map[string]string{"LOG_FORMAT": "text"}, nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "PAPERROUTE_ADMIN_TOKEN") {
		t.Errorf("run = %v, want a configuration error naming PAPERROUTE_ADMIN_TOKEN", err)
	}
	if err := run(context.Background(), envload.MapGetenv(map[string]string{"LOG_LEVEL": "loud"}, nil), &bytes.Buffer{}, &stderr); err == nil {
		t.Error("run accepted LOG_LEVEL=loud")
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	r := redistest.Start(t)
	env := map[string]string{
		"REDIS_URL":                r.URL(),
		"PAPERROUTE_ADMIN_TOKEN":   "a",
		"PAPERROUTE_SERVICE_TOKEN": "s",
		"SENDER_GRPC_ADDR":         freeAddr(t),
		"SENDER_HTTP_ADDR":         freeAddr(t),
		"SENDER_SMTP_ADDR":         freeAddr(t), // no relay: must not matter
		"LOG_FORMAT":               "json",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr logging.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, envload.MapGetenv(env, nil), &bytes.Buffer{}, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "sender: serving") {
		if time.Now().After(deadline) {
			t.Fatalf("the service did not start; logs:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), `"msg":"successful shutdown"`) {
		t.Errorf("logs lack the shutdown line:\n%s", stderr.String())
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
