package config_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/services/sender/internal/config"
)

func tokens(extra map[string]string) func(string) string {
	env := map[string]string{"PAPERROUTE_ADMIN_TOKEN": "admin", "PAPERROUTE_SERVICE_TOKEN": "service"}
	for k, v := range extra {
		env[k] = v
	}
	return envload.MapGetenv(env, nil)
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(context.Background(), tokens(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"grpc": c.GRPCAddr, "http": c.HTTPAddr, "redis": c.RedisURL, "smtp": c.SMTPAddr, "tls": c.SMTPTLS,
		"timeout": c.SMTPTimeout, "per conn": c.SMTPMaxPerConn, "from": c.From.String(), "msgid": c.MessageIDDomain,
		"workers": c.Workers, "connections": c.SMTPConnections, "partitions": c.Partitions, "attempts": c.MaxAttempts, "retry": c.RetryAfter,
		"grace": c.ShutdownGrace, "consumer set": c.Consumer != "",
		"lease": c.Lease, "retry unknown": c.RetryUnknown, "retry max": c.RetryMaxDelay, "retention": c.Retention,
		"allow eviction": c.AllowEviction, "list id": c.ListID,
	}
	want := map[string]any{
		"grpc": "127.0.0.1:50053", "http": "127.0.0.1:8083", "redis": "redis://127.0.0.1:6379/0", "smtp": "127.0.0.1:2525",
		"tls": "mandatory", "timeout": 30 * time.Second, "per conn": 1000,
		"from": `"paperroute" <digest@paperroute.localhost>`, "msgid": "paperroute.localhost",
		"workers": 16, "connections": 4, "partitions": 4, "attempts": 8, "retry": 30 * time.Second, "grace": 10 * time.Second, "consumer set": true,
		"lease": time.Minute, "retry unknown": true, "retry max": 30 * time.Minute, "retention": 7 * 24 * time.Hour,
		"allow eviction": false, "list id": "paperroute digest <digest.paperroute.localhost>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadOverrides(t *testing.T) {
	c, err := config.Load(context.Background(), tokens(map[string]string{
		"REDIS_URL":                "redis://shared:6379/0",
		"SENDER_REDIS_URL":         "redis://own:6379/1",
		"SENDER_FROM":              "Digest <Digest@Paperroute.EXAMPLE>",
		"SENDER_MESSAGE_ID_DOMAIN": "mid.paperroute.example",
		"SENDER_SMTP_TLS":          "implicit",
		"SENDER_SMTP_USERNAME":     "u",
		"SENDER_SMTP_PASSWORD":     "p",
		"SENDER_CONSUMER":          "sender-a",
		"SENDER_RETRY_AFTER":       "5s",
		"SENDER_LIST_ID":           "Trending papers <trending.paperroute.example>",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.RedisURL, c.From.Address, c.From.Name, c.MessageIDDomain, c.SMTPTLS, c.Consumer, c.RetryAfter.String(), c.ListID}
	want := []string{"redis://own:6379/1", "Digest@paperroute.example", "Digest", "mid.paperroute.example", "implicit", "sender-a", "5s",
		"Trending papers <trending.paperroute.example>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	shared, err := config.Load(context.Background(), tokens(map[string]string{"REDIS_URL": "redis://shared:6379/0"}))
	if err != nil || shared.RedisURL != "redis://shared:6379/0" {
		t.Errorf("REDIS_URL fallback = %q, %v", shared.RedisURL, err)
	}
}

// Each relay has its own limit: the primary SENDER_SMTP_RATE_LIMIT, each
// fallback its SENDER_SMTP_FALLBACK_RATE_LIMITS entry or, without one, the
// primary's.
func TestRelayRateLimits(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want map[string]int
	}{
		{"none", nil, map[string]int{"127.0.0.1:2525": 0}},
		{"fallbacks take the primary's", map[string]string{"SENDER_SMTP_RATE_LIMIT": "50", "SENDER_SMTP_FALLBACK_ADDRS": "b:25,c:25"},
			map[string]int{"127.0.0.1:2525": 50, "b:25": 50, "c:25": 50}},
		{"one each", map[string]string{"SENDER_SMTP_RATE_LIMIT": "50", "SENDER_SMTP_FALLBACK_ADDRS": "b:25, c:25", "SENDER_SMTP_FALLBACK_RATE_LIMITS": "10, 0"},
			map[string]int{"127.0.0.1:2525": 50, "b:25": 10, "c:25": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(context.Background(), tokens(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.RelayRateLimits()); diff != "" {
				t.Errorf("RelayRateLimits() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRefusesBadValues(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"missing admin token", map[string]string{"PAPERROUTE_ADMIN_TOKEN": ""}, "PAPERROUTE_ADMIN_TOKEN"},
		{"same tokens", map[string]string{"PAPERROUTE_SERVICE_TOKEN": "admin"}, "must differ"},
		{"From with two addresses", map[string]string{"SENDER_FROM": "a@example.com, b@example.com"}, "SENDER_FROM"},
		{"From with CRLF", map[string]string{"SENDER_FROM": "x <a@example.com>\r\nBcc: b@example.com"}, "SENDER_FROM"},
		{"From single-label domain", map[string]string{"SENDER_FROM": "a@localhost"}, "SENDER_FROM"},
		{"bad Message-ID domain", map[string]string{"SENDER_MESSAGE_ID_DOMAIN": "bad domain"}, "SENDER_MESSAGE_ID_DOMAIN"},
		{"TLS mode", map[string]string{"SENDER_SMTP_TLS": "yes"}, "SENDER_SMTP_TLS"},
		{"username without password", map[string]string{"SENDER_SMTP_USERNAME": "u"}, "SENDER_SMTP_PASSWORD"},
		{"zero workers", map[string]string{"SENDER_WORKERS": "0"}, "SENDER_WORKERS"},
		{"negative SMTP connections", map[string]string{"SENDER_SMTP_CONNECTIONS": "-1"}, "SENDER_SMTP_CONNECTIONS"},
		{"not a number", map[string]string{"SENDER_PARTITIONS": "four"}, "SENDER_PARTITIONS"},
		{"too many partitions", map[string]string{"SENDER_PARTITIONS": "5000"}, "SENDER_PARTITIONS"},
		{"zero attempts", map[string]string{"SENDER_MAX_ATTEMPTS": "0"}, "SENDER_MAX_ATTEMPTS"},
		{"retry too short", map[string]string{"SENDER_RETRY_AFTER": "1ms"}, "SENDER_RETRY_AFTER"},
		{"bad duration", map[string]string{"SENDER_SMTP_TIMEOUT": "soon"}, "SENDER_SMTP_TIMEOUT"},
		{"negative timeout", map[string]string{"SENDER_SMTP_TIMEOUT": "-1s"}, "SENDER_SMTP_TIMEOUT"},
		{"zero per conn", map[string]string{"SENDER_SMTP_MAX_PER_CONN": "0"}, "SENDER_SMTP_MAX_PER_CONN"},
		{"smtp address without port", map[string]string{"SENDER_SMTP_ADDR": "relay.example"}, "SENDER_SMTP_ADDR"},
		{"grpc address", map[string]string{"SENDER_GRPC_ADDR": "nowhere"}, "SENDER_GRPC_ADDR"},
		{"negative grace", map[string]string{"SHUTDOWN_GRACE": "-1s"}, "SHUTDOWN_GRACE"},
		{"List-Id with a line break", map[string]string{"SENDER_LIST_ID": "x <a.example>\r\nBcc: b@example.com"}, "SENDER_LIST_ID"},
		{"List-Id without brackets", map[string]string{"SENDER_LIST_ID": "digest.example.org"}, "SENDER_LIST_ID"},
		{"List-Id without a dot", map[string]string{"SENDER_LIST_ID": "<digest>"}, "SENDER_LIST_ID"},
		{"List-Id with a space inside", map[string]string{"SENDER_LIST_ID": "<digest .example>"}, "SENDER_LIST_ID"},
		{"List-Id too long", map[string]string{"SENDER_LIST_ID": "<" + strings.Repeat("a", 260) + ".example>"}, "SENDER_LIST_ID"},
		{"consumer too long", map[string]string{"SENDER_CONSUMER": strings.Repeat("c", 201)}, "SENDER_CONSUMER"},
		{"fallback limits without fallbacks", map[string]string{"SENDER_SMTP_FALLBACK_RATE_LIMITS": "5"}, "SENDER_SMTP_FALLBACK_RATE_LIMITS"},
		{"fewer fallback limits than fallbacks", map[string]string{"SENDER_SMTP_FALLBACK_ADDRS": "a:25,b:25", "SENDER_SMTP_FALLBACK_RATE_LIMITS": "5"}, "SENDER_SMTP_FALLBACK_RATE_LIMITS"},
		{"negative fallback limit", map[string]string{"SENDER_SMTP_FALLBACK_ADDRS": "a:25", "SENDER_SMTP_FALLBACK_RATE_LIMITS": "-1"}, "SENDER_SMTP_FALLBACK_RATE_LIMITS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(context.Background(), tokens(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := config.Config{}.Validate()
	if err == nil {
		t.Fatal("the zero Config is valid")
	}
	for _, name := range []string{"SENDER_GRPC_ADDR", "SENDER_REDIS_URL", "SENDER_FROM", "SENDER_WORKERS", "SENDER_RETRY_AFTER"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Validate() = %v, want it to name %s", err, name)
		}
	}
}
