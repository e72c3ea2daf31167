package redisclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/platform/redisclient"
	"github.com/paperroute/paperroute/platform/redistest"
)

func TestNewForms(t *testing.T) {
	tests := []struct {
		url      string
		wantType string
	}{
		{"redis://127.0.0.1:6390/2", "*redis.Client"},
		{"rediss://user:secret@redis.example.com:6380", "*redis.Client"},
		{"unix:///tmp/redis.sock?db=1", "*redis.Client"},
		{"redis+cluster://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", "*redis.ClusterClient"},
		{"rediss+cluster://u:p@10.0.0.1:7000", "*redis.ClusterClient"},
		{"redis+sentinel://10.0.0.1:26379?master_name=mymaster&addr=10.0.0.2:26379", "*redis.Client"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := redisclient.New(tt.url)
			if err != nil {
				t.Fatalf("New(%q) = %v", tt.url, err)
			}
			defer c.Close()
			if got := typeName(c); got != tt.wantType {
				t.Errorf("New(%q) = %s, want %s", tt.url, got, tt.wantType)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	}
	return "other"
}

func TestNewRejects(t *testing.T) {
	for _, u := range []string{
		"",
		"http://127.0.0.1:6379",
		"redis+sentinel://10.0.0.1:26379", // no master name
		"redis://127.0.0.1:6379?no_such_option=1", // unknown option
		"unix+cluster:///tmp/x.sock",
		"redis://user:hunter2@[::1",
		"redis://user:hu%tter2@127.0.0.1:6379",
	} {
		t.Run(u, func(t *testing.T) {
			c, err := redisclient.New(u)
			if err == nil {
				c.Close()
				t.Fatalf("New(%q) accepted", u)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "%tt") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	got := redisclient.Redact("rediss://default:s3cret@h:6380/0")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "h:6380") {
		t.Errorf("Redact = %q", got)
	}
}

func TestPingRealServer(t *testing.T) {
	srv := redistest.Start(t)
	c, err := redisclient.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := redisclient.Ping(context.Background(), c, 2*time.Second); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	srv.Kill()
	if err := redisclient.Ping(context.Background(), c, time.Second); err == nil {
		t.Fatal("Ping after kill succeeded")
	}
	srv.Restart()
	if err := redisclient.Ping(context.Background(), c, 2*time.Second); err != nil {
		t.Fatalf("Ping after restart = %v", err)
	}
}

func TestOpen(t *testing.T) {
	srv := redistest.Start(t)
	c, err := redisclient.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatalf("Open(running server) = %v", err)
	}
	c.Close()
	srv.Kill()
	_, err = redisclient.Open(context.Background(), "redis://user:s3cret@"+srv.Addr())
	if err == nil {
		t.Fatal("Open(killed server) succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), srv.Addr()) {
		t.Errorf("Open error = %q, want the redacted URL", err)
	}
	if _, err := redisclient.Open(context.Background(), "http://x"); err == nil {
		t.Error("Open(bad scheme) succeeded")
	}
}
