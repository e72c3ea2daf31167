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
)

// DefaultPostalAddress is the placeholder footer address. Production must
// set DIGEST_POSTAL_ADDRESS to the sender's real postal address: bulk mail
// law (CAN-SPAM and others) requires one.
const DefaultPostalAddress = "paperroute, 1 Example Street, 00000 Example City"

// Config is the digest service's configuration.
type Config struct {
	// GRPCAddr is where the gRPC API listens. DIGEST_GRPC_ADDR, default
	// 127.0.0.1:50052.
	GRPCAddr string `env:"DIGEST_GRPC_ADDR,default=127.0.0.1:50052"`
	// HTTPAddr is where /healthz and /metrics listen. DIGEST_HTTP_ADDR,
	// default 127.0.0.1:8082.
	HTTPAddr string `env:"DIGEST_HTTP_ADDR,default=127.0.0.1:8082"`
	// RedisURL is the digest service's Redis. DIGEST_REDIS_URL, default
	// REDIS_URL (see SharedRedisURL).
	RedisURL string `env:"DIGEST_REDIS_URL"`
	// SharedRedisURL is the Redis all services use unless they have their
	// own. REDIS_URL, default redis://127.0.0.1:6379/0.
	SharedRedisURL string `env:"REDIS_URL,default=redis://127.0.0.1:6379/0"`
	// SubscriberAddr is the subscriber service's gRPC address.
	// SUBSCRIBER_GRPC_ADDR, default 127.0.0.1:50051.
	SubscriberAddr string `env:"SUBSCRIBER_GRPC_ADDR,default=127.0.0.1:50051"`
	// SenderAddr is the sender service's gRPC address. SENDER_GRPC_ADDR,
	// default 127.0.0.1:50053.
	SenderAddr string `env:"SENDER_GRPC_ADDR,default=127.0.0.1:50053"`
	// PapersPerEdition is how many papers a digest carries, 1..50.
	// DIGEST_PAPERS_PER_EDITION, default 10.
	PapersPerEdition int `env:"DIGEST_PAPERS_PER_EDITION,default=10"`
	// PostalAddress is the sender's postal address shown in every digest
	// footer. DIGEST_POSTAL_ADDRESS, default DefaultPostalAddress (a
	// placeholder: production must set a real one).
	PostalAddress string `env:"DIGEST_POSTAL_ADDRESS,default=paperroute, 1 Example Street, 00000 Example City"`
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
	case paper.CleanText(addr) != addr || addr == "":
		errs = append(errs, errors.New("DIGEST_POSTAL_ADDRESS must be one line of text (no control characters or runs of spaces)"))
	case utf8.RuneCountInString(addr) > 300:
		errs = append(errs, errors.New("DIGEST_POSTAL_ADDRESS is longer than 300 characters"))
	}
	if c.AdminToken == c.ServiceToken {
		errs = append(errs, errors.New("PAPERROUTE_ADMIN_TOKEN and PAPERROUTE_SERVICE_TOKEN must differ"))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_GRACE %v must be positive", c.ShutdownGrace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
