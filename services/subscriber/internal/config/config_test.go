package config_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/services/subscriber/internal/config"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 40)
	hash = bytes.Repeat([]byte{3}, 32)
)

func required() map[string]string {
	return map[string]string{
		"SUBSCRIBER_TOKEN_KEYS":     "k1:" + base64.StdEncoding.EncodeToString(key1),
		"SUBSCRIBER_EMAIL_HASH_KEY": base64.StdEncoding.EncodeToString(hash),
		"PAPERROUTE_ADMIN_TOKEN":    "admin",
		"PAPERROUTE_SERVICE_TOKEN":  "service",
	}
}

func load(t *testing.T, change map[string]string) (config.Config, error) {
	t.Helper()
	env := required()
	for k, v := range change {
		env[k] = v
	}
	return config.Load(context.Background(), envload.MapGetenv(env, nil))
}

func TestDefaults(t *testing.T) {
	got, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		GRPCAddr:            "127.0.0.1:50051",
		HTTPAddr:            "127.0.0.1:8081",
		PublicURL:           "http://127.0.0.1:8081",
		TokenKeys:           []linktoken.Key{{ID: "k1", Secret: key1}},
		EmailHashKey:        hash,
		ConfirmTokenTTL:     168 * time.Hour,
		SenderAddr:          "127.0.0.1:50053",
		RedisURL:            "redis://127.0.0.1:6379/0",
		AdminToken:          "admin",
		ServiceToken:        "service",
		ShutdownGrace:       10 * time.Second,
		Topics:              config.DefaultTopics(),
		PendingTTL:          168 * time.Hour,
		DefaultDeliveryHour: 7,
		DefaultTimezone:     "UTC",
		Limits: subscription.Limits{
			PerIP:      subscription.Limit{Rate: 10, Burst: 10, Period: time.Hour},
			PerNetwork: subscription.Limit{Rate: 50, Burst: 50, Period: time.Hour},
			PerMailbox: subscription.Limit{Rate: 3, Burst: 3, Period: 24 * time.Hour},
			Global:     subscription.Limit{Rate: 600, Burst: 600, Period: time.Minute},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
}

func TestOverrides(t *testing.T) {
	got, err := load(t, map[string]string{
		"SUBSCRIBER_GRPC_ADDR":         "0.0.0.0:1",
		"SUBSCRIBER_HTTP_ADDR":         "[::1]:2",
		"SUBSCRIBER_PUBLIC_URL":        "https://news.example.com/paperroute/",
		"SUBSCRIBER_TOKEN_KEYS":        "new:" + base64.RawURLEncoding.EncodeToString(key2) + ",k1:" + base64.StdEncoding.EncodeToString(key1),
		"SUBSCRIBER_CONFIRM_TOKEN_TTL": "48h",
		"SENDER_GRPC_ADDR":             "sender:50053",
		"REDIS_URL":                    "redis://shared:6379/0",
		"SUBSCRIBER_REDIS_URL":         "rediss://own:6380/1",
		"SHUTDOWN_GRACE":               "3s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]linktoken.Key{{ID: "new", Secret: key2}, {ID: "k1", Secret: key1}}, got.TokenKeys); diff != "" {
		t.Errorf("TokenKeys mismatch (-want +got):\n%s", diff)
	}
	for name, pair := range map[string][2]any{
		"GRPCAddr":        {got.GRPCAddr, "0.0.0.0:1"},
		"HTTPAddr":        {got.HTTPAddr, "[::1]:2"},
		"PublicURL":       {got.PublicURL, "https://news.example.com/paperroute"},
		"ConfirmTokenTTL": {got.ConfirmTokenTTL, 48 * time.Hour},
		"SenderAddr":      {got.SenderAddr, "sender:50053"},
		"RedisURL":        {got.RedisURL, "rediss://own:6380/1"},
		"ShutdownGrace":   {got.ShutdownGrace, 3 * time.Second},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s = %v, want %v", name, pair[0], pair[1])
		}
	}
	shared, err := load(t, map[string]string{"REDIS_URL": "redis://shared:6379/0"})
	if err != nil {
		t.Fatal(err)
	}
	if shared.RedisURL != "redis://shared:6379/0" {
		t.Errorf("RedisURL = %q, want REDIS_URL when SUBSCRIBER_REDIS_URL is unset", shared.RedisURL)
	}
}

// TestPublicURLsTheSenderAccepts lists forms that must keep working: https,
// and http to loopback hosts for local use.
func TestSubscriptionSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topics.json")
	if err := os.WriteFile(path, []byte(`[{"id":"llm","label":"LLMs"},{"id":"rl"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := load(t, map[string]string{
		"SUBSCRIBER_TOPICS_FILE": path, "SUBSCRIBER_LIMIT_PER_IP": "off", "SUBSCRIBER_LIMIT_GLOBAL": "100/30s",
		"SUBSCRIBER_CLIENT_DATA_RETENTION": "4380h", "SUBSCRIBER_DEFAULT_TIMEZONE": "Asia/Kathmandu", "SUBSCRIBER_DEFAULT_DELIVERY_HOUR": "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]subscription.Topic{{ID: "llm", Label: "LLMs"}, {ID: "rl", Label: "rl"}}, got.Topics); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
	if got.Limits.PerIP != (subscription.Limit{}) || got.Limits.Global != (subscription.Limit{Rate: 100, Burst: 100, Period: 30 * time.Second}) {
		t.Errorf("limits = %+v", got.Limits)
	}
	if got.ClientDataRetention != 4380*time.Hour || got.DefaultTimezone != "Asia/Kathmandu" || got.DefaultDeliveryHour != 0 {
		t.Errorf("config = %+v", got)
	}
}

func TestPublicURLsTheSenderAccepts(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:8081",
		"http://localhost:8081/",
		"http://[::1]:8081",
		"https://news.example.com",
		"https://news.example.com/paperroute/",
		"https://news.example.com:8443/a%20b",
	} {
		if _, err := load(t, map[string]string{"SUBSCRIBER_PUBLIC_URL": u}); err != nil {
			t.Errorf("SUBSCRIBER_PUBLIC_URL=%s: %v", u, err)
		}
	}
}

func TestInvalid(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	tests := []struct {
		name   string
		change map[string]string
		want   []string // substrings of the error
	}{
		{"no token keys", map[string]string{"SUBSCRIBER_TOKEN_KEYS": ""}, []string{"SUBSCRIBER_TOKEN_KEYS: is required"}},
		{"token key not kid:key", map[string]string{"SUBSCRIBER_TOKEN_KEYS": "justakey"}, []string{"SUBSCRIBER_TOKEN_KEYS", "kid:base64key"}},
		{"token key short", map[string]string{"SUBSCRIBER_TOKEN_KEYS": "k:" + short}, []string{"SUBSCRIBER_TOKEN_KEYS", "at least 32"}},
		{"token key bad base64", map[string]string{"SUBSCRIBER_TOKEN_KEYS": "k:***"}, []string{"SUBSCRIBER_TOKEN_KEYS", "base64"}},
		{"token key duplicate id", map[string]string{"SUBSCRIBER_TOKEN_KEYS": "k1:" + base64.StdEncoding.EncodeToString(key1) + ",k1:" + base64.StdEncoding.EncodeToString(key2)}, []string{"SUBSCRIBER_TOKEN_KEYS", "twice"}},
		{"no email hash key", map[string]string{"SUBSCRIBER_EMAIL_HASH_KEY": ""}, []string{"SUBSCRIBER_EMAIL_HASH_KEY: is required"}},
		{"pending TTL too short", map[string]string{"SUBSCRIBER_PENDING_TTL": "5m"}, []string{"SUBSCRIBER_PENDING_TTL"}},
		{"retention not a duration", map[string]string{"SUBSCRIBER_CLIENT_DATA_RETENTION": "forever"}, []string{"SUBSCRIBER_CLIENT_DATA_RETENTION"}},
		{"default hour 24", map[string]string{"SUBSCRIBER_DEFAULT_DELIVERY_HOUR": "24"}, []string{"SUBSCRIBER_DEFAULT_DELIVERY_HOUR"}},
		{"default zone unknown", map[string]string{"SUBSCRIBER_DEFAULT_TIMEZONE": "Mars/Olympus"}, []string{"SUBSCRIBER_DEFAULT_TIMEZONE"}},
		{"limit without period", map[string]string{"SUBSCRIBER_LIMIT_PER_IP": "10"}, []string{"SUBSCRIBER_LIMIT_PER_IP"}},
		{"limit zero", map[string]string{"SUBSCRIBER_LIMIT_GLOBAL": "0/1m"}, []string{"SUBSCRIBER_LIMIT_GLOBAL"}},
		{"limit tiny period", map[string]string{"SUBSCRIBER_LIMIT_PER_MAILBOX": "3/1ms"}, []string{"SUBSCRIBER_LIMIT_PER_MAILBOX"}},
		{"topics file missing", map[string]string{"SUBSCRIBER_TOPICS_FILE": "/nonexistent/topics.json"}, []string{"SUBSCRIBER_TOPICS_FILE"}},
		{"email hash key short", map[string]string{"SUBSCRIBER_EMAIL_HASH_KEY": short}, []string{"SUBSCRIBER_EMAIL_HASH_KEY: is 31 bytes"}},
		{"email hash key bad base64", map[string]string{"SUBSCRIBER_EMAIL_HASH_KEY": "!!"}, []string{"SUBSCRIBER_EMAIL_HASH_KEY: is not valid base64"}},
		{"public URL relative", map[string]string{"SUBSCRIBER_PUBLIC_URL": "/pages"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		{"public URL ftp", map[string]string{"SUBSCRIBER_PUBLIC_URL": "ftp://example.com"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		{"public URL query", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://example.com/?x=1"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		{"public URL fragment", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://example.com/#top"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		{"public URL user info", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://u:p@example.com"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		{"public URL braces", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://example.com/{{x}}"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		// The sender refuses these as List-Unsubscribe, so every digest
		// would fail to queue: refuse them at start-up instead.
		{"public URL http to a public host", map[string]string{"SUBSCRIBER_PUBLIC_URL": "http://news.example.com"}, []string{"SUBSCRIBER_PUBLIC_URL", "https"}},
		{"public URL http to all interfaces", map[string]string{"SUBSCRIBER_PUBLIC_URL": "http://0.0.0.0:8081"}, []string{"SUBSCRIBER_PUBLIC_URL", "https"}},
		{"public URL upper-case scheme", map[string]string{"SUBSCRIBER_PUBLIC_URL": "HTTPS://news.example.com"}, []string{"SUBSCRIBER_PUBLIC_URL", `"https://news.example.com"`}},
		{"public URL non-ASCII path", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://news.example.com/abmelden-ü"}, []string{"SUBSCRIBER_PUBLIC_URL", "percent-encode"}},
		{"public URL non-ASCII host", map[string]string{"SUBSCRIBER_PUBLIC_URL": "https://bücher.example"}, []string{"SUBSCRIBER_PUBLIC_URL"}},
		{"grpc addr", map[string]string{"SUBSCRIBER_GRPC_ADDR": "nohostport"}, []string{"SUBSCRIBER_GRPC_ADDR"}},
		{"http addr", map[string]string{"SUBSCRIBER_HTTP_ADDR": "nohostport"}, []string{"SUBSCRIBER_HTTP_ADDR"}},
		{"sender addr", map[string]string{"SENDER_GRPC_ADDR": "nohostport"}, []string{"SENDER_GRPC_ADDR"}},
		{"ttl unparseable", map[string]string{"SUBSCRIBER_CONFIRM_TOKEN_TTL": "a week"}, []string{"SUBSCRIBER_CONFIRM_TOKEN_TTL"}},
		{"ttl too short", map[string]string{"SUBSCRIBER_CONFIRM_TOKEN_TTL": "1s"}, []string{"SUBSCRIBER_CONFIRM_TOKEN_TTL"}},
		{"no admin token", map[string]string{"PAPERROUTE_ADMIN_TOKEN": ""}, []string{"PAPERROUTE_ADMIN_TOKEN: is required"}},
		{"no service token", map[string]string{"PAPERROUTE_SERVICE_TOKEN": ""}, []string{"PAPERROUTE_SERVICE_TOKEN: is required"}},
		{"same tokens", map[string]string{"PAPERROUTE_SERVICE_TOKEN": "admin"}, []string{"must differ"}},
		{"negative grace", map[string]string{"SHUTDOWN_GRACE": "-1s"}, []string{"SHUTDOWN_GRACE"}},
		{"several at once", map[string]string{"SUBSCRIBER_TOKEN_KEYS": "", "SUBSCRIBER_EMAIL_HASH_KEY": ""}, []string{"SUBSCRIBER_TOKEN_KEYS", "SUBSCRIBER_EMAIL_HASH_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.change)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			for _, secret := range []string{base64.StdEncoding.EncodeToString(key1), base64.StdEncoding.EncodeToString(hash)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}
