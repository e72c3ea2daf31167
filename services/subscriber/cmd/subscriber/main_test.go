package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
)

func env(redisURL string) map[string]string {
	return map[string]string{
		"REDIS_URL":                 redisURL,
		"SUBSCRIBER_GRPC_ADDR":      "127.0.0.1:0",
		"SUBSCRIBER_HTTP_ADDR":      "127.0.0.1:0",
		"SUBSCRIBER_TOKEN_KEYS":     "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		"SUBSCRIBER_EMAIL_HASH_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)),
		"PAPERROUTE_ADMIN_TOKEN":    "admin",
		"PAPERROUTE_SERVICE_TOKEN":  "service",
		"LOG_FORMAT":                "text",
	}
}

func TestRunStartsAndShutsDown(t *testing.T) {
	rds := redistest.Start(t, redistest.WithoutAppendOnly())
	var stdout, stderr logging.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, envload.MapGetenv(env(rds.URL()), nil), &stdout, &stderr) }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "subscriber service started") {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line within 10s; logs:\n%s", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
	if !strings.Contains(stdout.String(), "successful shutdown") {
		t.Errorf("no 'successful shutdown' in logs:\n%s", stdout.String())
	}
}

func TestRunReportsBadConfig(t *testing.T) {
	for name, change := range map[string]map[string]string{
		"bad log level":  {"LOG_LEVEL": "loud"},
		"no token keys":  {"SUBSCRIBER_TOKEN_KEYS": ""},
		"no admin token": {"PAPERROUTE_ADMIN_TOKEN": ""},
	} {
		t.Run(name, func(t *testing.T) {
			e := env("redis://127.0.0.1:1")
			for k, v := range change {
				e[k] = v
			}
			var stdout, stderr logging.Buffer
			if err := run(context.Background(), envload.MapGetenv(e, nil), &stdout, &stderr); err == nil {
				t.Fatal("run succeeded, want an error")
			}
		})
	}
}
