package config_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/envload"

	"github.com/paperroute/paperroute/services/digest/internal/config"
)

// postal is a real-looking postal address: the only required setting
// besides the tokens.
const postal = "Example Ltd, 1 Road, Town"

var tokens = map[string]string{
	"PAPERROUTE_ADMIN_TOKEN":   "admin-token",
	"PAPERROUTE_SERVICE_TOKEN": "service-token",
	"DIGEST_POSTAL_ADDRESS":    postal,
}

func env(extra map[string]string) func(string) string {
	m := map[string]string{}
	for k, v := range tokens {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return envload.MapGetenv(m, nil)
}

func TestLoadDefaults(t *testing.T) {
	got, err := config.Load(context.Background(), env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Config{
		GRPCAddr:         "127.0.0.1:50052",
		HTTPAddr:         "127.0.0.1:8082",
		RedisURL:         "redis://127.0.0.1:6379/0",
		SharedRedisURL:   "redis://127.0.0.1:6379/0",
		SubscriberAddr:   "127.0.0.1:50051",
		SenderAddr:       "127.0.0.1:50053",
		PapersPerEdition: 10,
		PostalAddress:    postal,
		MaxImportBytes:   8 << 20,
		AdminToken:       "admin-token",
		ServiceToken:     "service-token",
		ShutdownGrace:    10 * time.Second,
		TrendingWindow:   72 * time.Hour,
		WeeklyWindow:     192 * time.Hour,
		SentMemory:       720 * time.Hour,
		Scheduler:        true,
		SchedulerTick:    30 * time.Second,
		Sources:          "hf",
		PollInterval:     15 * time.Minute,
		PollTimeout:      30 * time.Second,
		PollDays:         2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	if got.MaxRecvBytes() <= 9<<20 {
		t.Errorf("MaxRecvBytes = %d, want room for a 9 MiB document to reach validation", got.MaxRecvBytes())
	}
}

func TestLoadOverrides(t *testing.T) {
	got, err := config.Load(context.Background(), env(map[string]string{
		"REDIS_URL":                 "redis://shared:6379/0",
		"DIGEST_REDIS_URL":          "rediss://own:6380/1",
		"DIGEST_PAPERS_PER_EDITION": "25",
		"DIGEST_POSTAL_ADDRESS":     "Example Ltd, 2 Road, Town",
		"DIGEST_MAX_IMPORT_BYTES":   "1048576",
		"SENDER_GRPC_ADDR":          "sender:50053",
		"SHUTDOWN_GRACE":            "3s",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.RedisURL != "rediss://own:6380/1" || got.PapersPerEdition != 25 || got.PostalAddress != "Example Ltd, 2 Road, Town" ||
		got.MaxImportBytes != 1<<20 || got.SenderAddr != "sender:50053" || got.ShutdownGrace != 3*time.Second {
		t.Errorf("Load = %+v, want the overrides", got)
	}
	shared, err := config.Load(context.Background(), env(map[string]string{"REDIS_URL": "redis://shared:6379/0"}))
	if err != nil || shared.RedisURL != "redis://shared:6379/0" {
		t.Errorf("Load with only REDIS_URL: RedisURL = %q, %v; want the shared URL", shared.RedisURL, err)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no admin token", map[string]string{"PAPERROUTE_ADMIN_TOKEN": ""}, "PAPERROUTE_ADMIN_TOKEN"},
		{"no service token", map[string]string{"PAPERROUTE_SERVICE_TOKEN": ""}, "PAPERROUTE_SERVICE_TOKEN"},
		{"same tokens", map[string]string{"PAPERROUTE_SERVICE_TOKEN": "admin-token"}, "must differ"},
		{"papers zero", map[string]string{"DIGEST_PAPERS_PER_EDITION": "0"}, "DIGEST_PAPERS_PER_EDITION 0 is outside 1..50"},
		{"papers too many", map[string]string{"DIGEST_PAPERS_PER_EDITION": "51"}, "outside 1..50"},
		{"papers not a number", map[string]string{"DIGEST_PAPERS_PER_EDITION": "ten"}, "DIGEST_PAPERS_PER_EDITION"},
		{"import limit too big", map[string]string{"DIGEST_MAX_IMPORT_BYTES": "9000000"}, "DIGEST_MAX_IMPORT_BYTES 9000000 is outside"},
		{"import limit too small", map[string]string{"DIGEST_MAX_IMPORT_BYTES": "10"}, "DIGEST_MAX_IMPORT_BYTES 10 is outside"},
		{"no postal address", map[string]string{"DIGEST_POSTAL_ADDRESS": ""}, "DIGEST_POSTAL_ADDRESS is required"},
		{"placeholder postal address", map[string]string{"DIGEST_POSTAL_ADDRESS": config.PlaceholderPostalAddress}, "placeholder"},
		{"window too short", map[string]string{"DIGEST_TRENDING_WINDOW": "10m"}, "DIGEST_TRENDING_WINDOW 10m0s is outside"},
		{"memory shorter than the window", map[string]string{"DIGEST_SENT_MEMORY": "48h"}, "DIGEST_SENT_MEMORY 48h0m0s must be at least both windows"},
		{"tick too fast", map[string]string{"DIGEST_SCHEDULER_TICK": "1ms"}, "DIGEST_SCHEDULER_TICK"},
		{"postal address with a newline", map[string]string{"DIGEST_POSTAL_ADDRESS": "a\nb"}, "DIGEST_POSTAL_ADDRESS must be one line"},
		{"postal address too long", map[string]string{"DIGEST_POSTAL_ADDRESS": strings.Repeat("a", 301)}, "longer than 300"},
		{"bad grpc addr", map[string]string{"DIGEST_GRPC_ADDR": "50052"}, `DIGEST_GRPC_ADDR "50052" is not host:port`},
		{"bad sender addr", map[string]string{"SENDER_GRPC_ADDR": "sender"}, "SENDER_GRPC_ADDR"},
		{"bad grace", map[string]string{"SHUTDOWN_GRACE": "soon"}, "SHUTDOWN_GRACE"},
		{"negative grace", map[string]string{"SHUTDOWN_GRACE": "-1s"}, "SHUTDOWN_GRACE -1s must be positive"},
		{"unknown source", map[string]string{"DIGEST_SOURCES": "rss:https://example.com/feed"}, `DIGEST_SOURCES: source "rss:https://example.com/feed"`},
		{"bad arXiv category", map[string]string{"DIGEST_SOURCES": "hf,arxiv:cs LG"}, "want arxiv:<category>"},
		{"poll too often", map[string]string{"DIGEST_POLL_INTERVAL": "10s"}, "DIGEST_POLL_INTERVAL 10s is outside 1m..24h"},
		{"poll timeout zero", map[string]string{"DIGEST_POLL_TIMEOUT": "0s"}, "DIGEST_POLL_TIMEOUT 0s is outside"},
		{"poll days zero", map[string]string{"DIGEST_POLL_DAYS": "0"}, "DIGEST_POLL_DAYS 0 is outside 1..14"},
		{"poll days too many", map[string]string{"DIGEST_POLL_DAYS": "30"}, "DIGEST_POLL_DAYS 30 is outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(context.Background(), env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
