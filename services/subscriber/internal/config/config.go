// Package config is the subscriber service's configuration, read from
// environment variables and checked at start-up so a bad setting fails fast
// with a clear message.
package config

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// MinEmailHashKeyLength is the shortest SUBSCRIBER_EMAIL_HASH_KEY accepted,
// in bytes after base64 decoding.
const MinEmailHashKeyLength = 32

// Config is the subscriber service's configuration.
type Config struct {
	// GRPCAddr is where the gRPC API listens.
	// Env SUBSCRIBER_GRPC_ADDR, default 127.0.0.1:50051.
	GRPCAddr string
	// HTTPAddr is where the link pages, /healthz and /metrics listen.
	// Env SUBSCRIBER_HTTP_ADDR, default 127.0.0.1:8081.
	HTTPAddr string
	// PublicURL is the base of the links in mails (<PublicURL>/confirm,
	// <PublicURL>/unsubscribe): an absolute http(s) URL without query or
	// fragment, as the recipients' browsers reach HTTPAddr.
	// Env SUBSCRIBER_PUBLIC_URL, default http://127.0.0.1:8081.
	PublicURL string
	// TokenKeys sign (the first) and verify (all) link tokens.
	// Env SUBSCRIBER_TOKEN_KEYS, required: "kid:base64key[,kid:base64key…]",
	// each key at least 32 bytes.
	TokenKeys []linktoken.Key
	// EmailHashKey keys the HMAC under which addresses are indexed, so
	// Redis holds no plaintext address index. Changing it orphans the
	// index. Env SUBSCRIBER_EMAIL_HASH_KEY, required: base64, at least 32
	// bytes.
	EmailHashKey []byte
	// ConfirmTokenTTL is how long a confirmation link works.
	// Env SUBSCRIBER_CONFIRM_TOKEN_TTL, default 168h.
	ConfirmTokenTTL time.Duration
	// SenderAddr is the sender service's gRPC address.
	// Env SENDER_GRPC_ADDR, default 127.0.0.1:50053.
	SenderAddr string
	// RedisURL is the Redis to use (see platform/redisclient for the forms).
	// Env SUBSCRIBER_REDIS_URL, else REDIS_URL, default
	// redis://127.0.0.1:6379/0.
	RedisURL string
	// AdminToken is the operator bearer token (OPERATOR RPCs).
	// Env PAPERROUTE_ADMIN_TOKEN, required.
	AdminToken string
	// ServiceToken is the token services present to each other (INTERNAL
	// RPCs); the subscriber also presents it to the sender.
	// Env PAPERROUTE_SERVICE_TOKEN, required.
	ServiceToken string
	// ShutdownGrace is how long in-flight requests get on shutdown.
	// Env SHUTDOWN_GRACE, default 10s.
	ShutdownGrace time.Duration
	// Topics is the topic catalogue sign-ups are validated against (see
	// docs/subscriber.md, "Topic catalogue").
	// Env SUBSCRIBER_TOPICS_FILE: a JSON file [{"id":…,"label":…},…];
	// default: the built-in catalogue (DefaultTopics).
	Topics []subscription.Topic
	// PendingTTL is how long an unconfirmed sign-up is kept before it is
	// purged. Env SUBSCRIBER_PENDING_TTL, default 168h.
	PendingTTL time.Duration
	// ClientDataRetention is how long sign-up/confirmation IP and user
	// agent are kept in the consent record; 0 keeps them.
	// Env SUBSCRIBER_CLIENT_DATA_RETENTION, default 0 (keep).
	ClientDataRetention time.Duration
	// DefaultDeliveryHour and DefaultTimezone apply to sign-ups naming
	// none. Env SUBSCRIBER_DEFAULT_DELIVERY_HOUR (default 7),
	// SUBSCRIBER_DEFAULT_TIMEZONE (default UTC).
	DefaultDeliveryHour int
	DefaultTimezone     string
	// Limits are the Subscribe abuse limits, each "<count>/<period>" (e.g.
	// 3/24h) or "off". Env SUBSCRIBER_LIMIT_PER_IP (default 10/1h),
	// SUBSCRIBER_LIMIT_PER_NETWORK (50/1h), SUBSCRIBER_LIMIT_PER_MAILBOX
	// (3/24h), SUBSCRIBER_LIMIT_GLOBAL (600/1m).
	Limits subscription.Limits
}

// env is the raw environment, before parsing and checking.
type env struct {
	GRPCAddr        string `env:"SUBSCRIBER_GRPC_ADDR"`
	HTTPAddr        string `env:"SUBSCRIBER_HTTP_ADDR"`
	PublicURL       string `env:"SUBSCRIBER_PUBLIC_URL, default=http://127.0.0.1:8081"`
	TokenKeys       string `env:"SUBSCRIBER_TOKEN_KEYS"`
	EmailHashKey    string `env:"SUBSCRIBER_EMAIL_HASH_KEY"`
	ConfirmTokenTTL string `env:"SUBSCRIBER_CONFIRM_TOKEN_TTL, default=168h"`
	SenderAddr      string `env:"SENDER_GRPC_ADDR"`
	SubscriberRedis string `env:"SUBSCRIBER_REDIS_URL"`
	RedisURL        string `env:"REDIS_URL, default=redis://127.0.0.1:6379/0"`
	AdminToken      string `env:"PAPERROUTE_ADMIN_TOKEN"`
	ServiceToken    string `env:"PAPERROUTE_SERVICE_TOKEN"`
	ShutdownGrace   string `env:"SHUTDOWN_GRACE, default=10s"`
	TopicsFile      string `env:"SUBSCRIBER_TOPICS_FILE"`
	PendingTTL      string `env:"SUBSCRIBER_PENDING_TTL, default=168h"`
	Retention       string `env:"SUBSCRIBER_CLIENT_DATA_RETENTION, default=0"`
	DefaultHour     string `env:"SUBSCRIBER_DEFAULT_DELIVERY_HOUR, default=7"`
	DefaultTimezone string `env:"SUBSCRIBER_DEFAULT_TIMEZONE, default=UTC"`
	LimitIP         string `env:"SUBSCRIBER_LIMIT_PER_IP, default=10/1h"`
	LimitNetwork    string `env:"SUBSCRIBER_LIMIT_PER_NETWORK, default=50/1h"`
	LimitMailbox    string `env:"SUBSCRIBER_LIMIT_PER_MAILBOX, default=3/24h"`
	LimitGlobal     string `env:"SUBSCRIBER_LIMIT_GLOBAL, default=600/1m"`
}

// Load reads the configuration through getenv and checks it. The error
// names every problem found, by environment variable.
func Load(ctx context.Context, getenv func(string) string) (Config, error) {
	var e env
	if err := envload.Load(ctx, getenv, &e); err != nil {
		return Config{}, err
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	cfg := Config{
		GRPCAddr:     e.GRPCAddr,
		HTTPAddr:     e.HTTPAddr,
		PublicURL:    strings.TrimRight(e.PublicURL, "/"),
		SenderAddr:   e.SenderAddr,
		RedisURL:     e.RedisURL,
		AdminToken:   e.AdminToken,
		ServiceToken: e.ServiceToken,
	}
	if e.SubscriberRedis != "" {
		cfg.RedisURL = e.SubscriberRedis
	}
	for _, a := range []struct{ name, addr string }{
		{"SUBSCRIBER_GRPC_ADDR", e.GRPCAddr},
		{"SUBSCRIBER_HTTP_ADDR", e.HTTPAddr},
		{"SENDER_GRPC_ADDR", e.SenderAddr},
	} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad(a.name, "%q is not host:port", a.addr)
		}
	}
	if err := checkPublicURL(e.PublicURL); err != nil {
		bad("SUBSCRIBER_PUBLIC_URL", "%v", err)
	}
	if e.TokenKeys == "" {
		bad("SUBSCRIBER_TOKEN_KEYS", "is required (kid:base64key[,kid:base64key…], keys of at least %d bytes)", linktoken.MinKeyLength)
	} else if keys, err := linktoken.ParseKeys(e.TokenKeys); err != nil {
		bad("SUBSCRIBER_TOKEN_KEYS", "%v", err)
	} else if _, err := linktoken.NewKeyring(keys); err != nil {
		bad("SUBSCRIBER_TOKEN_KEYS", "%v", err)
	} else {
		cfg.TokenKeys = keys
	}
	if e.EmailHashKey == "" {
		bad("SUBSCRIBER_EMAIL_HASH_KEY", "is required (base64, at least %d bytes)", MinEmailHashKeyLength)
	} else if key, err := base64.StdEncoding.DecodeString(e.EmailHashKey); err != nil {
		bad("SUBSCRIBER_EMAIL_HASH_KEY", "is not valid base64")
	} else if len(key) < MinEmailHashKeyLength {
		bad("SUBSCRIBER_EMAIL_HASH_KEY", "is %d bytes, want at least %d", len(key), MinEmailHashKeyLength)
	} else {
		cfg.EmailHashKey = key
	}
	if d, err := time.ParseDuration(e.ConfirmTokenTTL); err != nil {
		bad("SUBSCRIBER_CONFIRM_TOKEN_TTL", "%q is not a duration like 168h", e.ConfirmTokenTTL)
	} else if d < time.Minute {
		bad("SUBSCRIBER_CONFIRM_TOKEN_TTL", "is %s, want at least 1m", d)
	} else {
		cfg.ConfirmTokenTTL = d
	}
	if e.AdminToken == "" {
		bad("PAPERROUTE_ADMIN_TOKEN", "is required")
	}
	if e.ServiceToken == "" {
		bad("PAPERROUTE_SERVICE_TOKEN", "is required")
	}
	if e.AdminToken != "" && e.AdminToken == e.ServiceToken {
		bad("PAPERROUTE_SERVICE_TOKEN", "must differ from PAPERROUTE_ADMIN_TOKEN")
	}
	if d, err := time.ParseDuration(e.ShutdownGrace); err != nil || d <= 0 {
		bad("SHUTDOWN_GRACE", "%q is not a positive duration like 10s", e.ShutdownGrace)
	} else {
		cfg.ShutdownGrace = d
	}
	loadSubscription(&cfg, e, bad)
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with http:// or https://", raw)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q must be an absolute URL with a host", raw)
	case u.User != nil:
		return fmt.Errorf("%q must not contain user info", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q must not have a query or fragment", raw)
	case strings.IndexFunc(raw, func(r rune) bool { return !isURLChar(r) }) >= 0:
		return fmt.Errorf("%q contains characters that do not belong in a URL (percent-encode them)", raw)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		// The unsubscribe links become List-Unsubscribe headers, which the
		// sender accepts over http only for loopback hosts (local use), and
		// RFC 8058 one-click needs https.
		return fmt.Errorf("%q must use https (http only for loopback hosts: localhost, 127.0.0.0/8, [::1])", raw)
	}
	// The sender refuses a List-Unsubscribe URL that net/url would write
	// differently, so the links built on this URL must already be in that
	// form (e.g. a lower-case scheme).
	link := strings.TrimRight(raw, "/") + "/unsubscribe?token=t"
	l, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if l.String() != link {
		return fmt.Errorf("%q is not in canonical form (write it as %q)", raw, strings.TrimSuffix(l.String(), "/unsubscribe?token=t"))
	}
	return nil
}

// isURLChar reports whether r is one of the RFC 3986 characters (unreserved,
// reserved or '%') that may appear in a link as written in a mail header.
func isURLChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("-._~:/?#[]@!$&'()*+,;=%", r)
}

// isLoopbackHost reports whether host is localhost, 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
