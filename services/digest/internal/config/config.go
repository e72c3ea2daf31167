// Package config is the digest service's configuration, read from
// environment variables.
package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/envload"

	"github.com/paperroute/paperroute/services/digest/internal/hfdaily"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/poller"
)

// PlaceholderPostalAddress is the example address of earlier versions'
// defaults and of the docs: start-up refuses it. Every digest footer must
// carry the sender's real postal address (CAN-SPAM and others require
// one); the dev mode sets its own, marked as local.
const PlaceholderPostalAddress = "paperroute, 1 Example Street, 00000 Example City"

// Config is the digest service's configuration.
type Config struct {
	// GRPCAddr is where the gRPC API listens. DIGEST_GRPC_ADDR, default
	// 127.0.0.1:50052.
	GRPCAddr string `env:"DIGEST_GRPC_ADDR"`
	// HTTPAddr is where /healthz and /metrics listen. DIGEST_HTTP_ADDR,
	// default 127.0.0.1:8082.
	HTTPAddr string `env:"DIGEST_HTTP_ADDR"`
	// RedisURL is the digest service's Redis. DIGEST_REDIS_URL, default
	// REDIS_URL (see SharedRedisURL).
	RedisURL string `env:"DIGEST_REDIS_URL"`
	// SharedRedisURL is the Redis all services use unless they have their
	// own. REDIS_URL, default redis://127.0.0.1:6379/0.
	SharedRedisURL string `env:"REDIS_URL,default=redis://127.0.0.1:6379/0"`
	// SubscriberAddr is the subscriber service's gRPC address.
	// SUBSCRIBER_GRPC_ADDR, default 127.0.0.1:50051.
	SubscriberAddr string `env:"SUBSCRIBER_GRPC_ADDR"`
	// SenderAddr is the sender service's gRPC address. SENDER_GRPC_ADDR,
	// default 127.0.0.1:50053.
	SenderAddr string `env:"SENDER_GRPC_ADDR"`
	// PapersPerEdition is how many papers a digest carries, 1..50.
	// DIGEST_PAPERS_PER_EDITION, default 10.
	PapersPerEdition int `env:"DIGEST_PAPERS_PER_EDITION,default=10"`
	// PostalAddress is the sender's postal address shown in every digest
	// footer. DIGEST_POSTAL_ADDRESS, required (the dev mode sets one).
	PostalAddress string `env:"DIGEST_POSTAL_ADDRESS"`
	// TopicsFile replaces the shipped topic catalogue with a JSON file
	// (docs/ranking.md). DIGEST_TOPICS_FILE, default none.
	TopicsFile string `env:"DIGEST_TOPICS_FILE"`
	// TrendingWindow is how far back (by featured time) papers qualify for
	// a daily edition and for ListTrending. DIGEST_TRENDING_WINDOW,
	// default 72h.
	TrendingWindow time.Duration `env:"DIGEST_TRENDING_WINDOW,default=72h"`
	// WeeklyWindow is the same for a weekly edition.
	// DIGEST_WEEKLY_WINDOW, default 192h (8 days).
	WeeklyWindow time.Duration `env:"DIGEST_WEEKLY_WINDOW,default=192h"`
	// SentMemory is how long the papers sent to a subscriber are
	// remembered and never sent again; at least both windows.
	// DIGEST_SENT_MEMORY, default 720h (30 days).
	SentMemory time.Duration `env:"DIGEST_SENT_MEMORY,default=720h"`
	// Scheduler turns the scheduler on: it runs each 15-minute slot's
	// digests by itself. DIGEST_SCHEDULER, default true.
	Scheduler bool `env:"DIGEST_SCHEDULER,default=true"`
	// SchedulerTick is how often the scheduler looks for slots to run.
	// DIGEST_SCHEDULER_TICK, default 30s.
	SchedulerTick time.Duration `env:"DIGEST_SCHEDULER_TICK,default=30s"`
	// Sources are what the source poller fetches (see docs/sources.md): a
	// comma-separated list of "hf" (the Hugging Face daily papers API),
	// "hf:<URL>" (another daily papers API URL), "arxiv:<category>" (an
	// arXiv category through the arXiv API), or "off". DIGEST_SOURCES,
	// default hf. `paperroute dev` sets it to off unless it is set.
	Sources string `env:"DIGEST_SOURCES,default=hf"`
	// PollInterval is the wait between two successful polls, 1m..24h.
	// DIGEST_POLL_INTERVAL, default 15m.
	PollInterval time.Duration `env:"DIGEST_POLL_INTERVAL,default=15m"`
	// PollTimeout bounds one request of the poller, body included, 1s..5m.
	// DIGEST_POLL_TIMEOUT, default 30s.
	PollTimeout time.Duration `env:"DIGEST_POLL_TIMEOUT,default=30s"`
	// PollDays is how many days of the daily list each poll fetches, today
	// (UTC) first: 2 = today and yesterday, 1..14. DIGEST_POLL_DAYS,
	// default 2.
	PollDays int `env:"DIGEST_POLL_DAYS,default=2"`
	// MaxImportBytes bounds an ImportPapers document, 1 KiB..8 MiB.
	// DIGEST_MAX_IMPORT_BYTES, default 8388608 (8 MiB).
	MaxImportBytes int `env:"DIGEST_MAX_IMPORT_BYTES,default=8388608"`
	// AdminToken is the operator bearer token. PAPERROUTE_ADMIN_TOKEN,
	// required.
	AdminToken string `env:"PAPERROUTE_ADMIN_TOKEN,required"`
	// ServiceToken is the token services call each other with; the digest
	// presents it to the subscriber and sender services.
	// PAPERROUTE_SERVICE_TOKEN, required.
	ServiceToken string `env:"PAPERROUTE_SERVICE_TOKEN,required"`
	// ShutdownGrace is how long in-flight calls get on shutdown.
	// SHUTDOWN_GRACE, default 10s.
	ShutdownGrace time.Duration `env:"SHUTDOWN_GRACE,default=10s"`
}

// MaxRecvBytes is the largest gRPC request the server accepts: twice the
// import limit, so that a document somewhat over the limit still gets a
// clear InvalidArgument naming "data" instead of a transport error.
func (c Config) MaxRecvBytes() int { return 2*c.MaxImportBytes + 64<<10 }

// Load reads the configuration through getenv and validates it.
func Load(ctx context.Context, getenv func(string) string) (Config, error) {
	var c Config
	if err := envload.Load(ctx, getenv, &c); err != nil {
		return Config{}, err
	}
	if c.RedisURL == "" {
		c.RedisURL = c.SharedRedisURL
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field and reports all problems at once.
func (c Config) Validate() error {
	var errs []error
	for _, a := range []struct{ name, addr string }{
		{"DIGEST_GRPC_ADDR", c.GRPCAddr}, {"DIGEST_HTTP_ADDR", c.HTTPAddr},
		{"SUBSCRIBER_GRPC_ADDR", c.SubscriberAddr}, {"SENDER_GRPC_ADDR", c.SenderAddr},
	} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("%s %q is not host:port", a.name, a.addr))
		}
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("DIGEST_REDIS_URL or REDIS_URL must be set"))
	}
	if c.PapersPerEdition < 1 || c.PapersPerEdition > 50 {
		errs = append(errs, fmt.Errorf("DIGEST_PAPERS_PER_EDITION %d is outside 1..50", c.PapersPerEdition))
	}
	if c.MaxImportBytes < 1<<10 || c.MaxImportBytes > hfdaily.MaxBytes {
		errs = append(errs, fmt.Errorf("DIGEST_MAX_IMPORT_BYTES %d is outside 1024..%d", c.MaxImportBytes, hfdaily.MaxBytes))
	}
	switch addr := c.PostalAddress; {
	case addr == "":
		errs = append(errs, errors.New("DIGEST_POSTAL_ADDRESS is required: every digest footer carries the sender's postal address"))
	case addr == PlaceholderPostalAddress:
		errs = append(errs, errors.New("DIGEST_POSTAL_ADDRESS is the documentation's placeholder; set the sender's real postal address"))
	case paper.CleanText(addr) != addr:
		errs = append(errs, errors.New("DIGEST_POSTAL_ADDRESS must be one line of text (no control characters or runs of spaces)"))
	case utf8.RuneCountInString(addr) > 300:
		errs = append(errs, errors.New("DIGEST_POSTAL_ADDRESS is longer than 300 characters"))
	}
	if c.TrendingWindow < time.Hour || c.TrendingWindow > 30*24*time.Hour {
		errs = append(errs, fmt.Errorf("DIGEST_TRENDING_WINDOW %v is outside 1h..720h", c.TrendingWindow))
	}
	if c.WeeklyWindow < time.Hour || c.WeeklyWindow > 30*24*time.Hour {
		errs = append(errs, fmt.Errorf("DIGEST_WEEKLY_WINDOW %v is outside 1h..720h", c.WeeklyWindow))
	}
	if c.SentMemory < max(c.TrendingWindow, c.WeeklyWindow) || c.SentMemory > 366*24*time.Hour {
		errs = append(errs, fmt.Errorf("DIGEST_SENT_MEMORY %v must be at least both windows and at most 8784h (a year)", c.SentMemory))
	}
	if c.SchedulerTick < time.Second || c.SchedulerTick > 5*time.Minute {
		errs = append(errs, fmt.Errorf("DIGEST_SCHEDULER_TICK %v is outside 1s..5m", c.SchedulerTick))
	}
	if c.AdminToken == c.ServiceToken {
		errs = append(errs, errors.New("PAPERROUTE_ADMIN_TOKEN and PAPERROUTE_SERVICE_TOKEN must differ"))
	}
	if _, err := poller.ParseSources(c.Sources); err != nil {
		errs = append(errs, fmt.Errorf("DIGEST_SOURCES: %w", err))
	}
	if c.PollInterval < time.Minute || c.PollInterval > 24*time.Hour {
		errs = append(errs, fmt.Errorf("DIGEST_POLL_INTERVAL %v is outside 1m..24h", c.PollInterval))
	}
	if c.PollTimeout < time.Second || c.PollTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("DIGEST_POLL_TIMEOUT %v is outside 1s..5m", c.PollTimeout))
	}
	if c.PollDays < 1 || c.PollDays > poller.MaxDays {
		errs = append(errs, fmt.Errorf("DIGEST_POLL_DAYS %d is outside 1..%d", c.PollDays, poller.MaxDays))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_GRACE %v must be positive", c.ShutdownGrace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
