// Package redisclient opens a go-redis UniversalClient from a URL, so one
// setting (REDIS_URL) selects a single server, Sentinel or Cluster, with AUTH
// and TLS.
package redisclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// New returns a client for rawURL without connecting. Accepted forms:
//
//	redis://[user:password@]host:port[/db][?options]     single server
//	rediss://…                                            single server over TLS
//	unix:///path/to/redis.sock[?db=N]                     single server, unix socket
//	redis+cluster://[user:password@]host:port?addr=host2:port2&…   Cluster (rediss+cluster:// for TLS)
//	redis+sentinel://[user:password@]host:port?master_name=name&addr=…  Sentinel (rediss+sentinel:// for TLS)
//
// Options are go-redis's URL query options (dial_timeout, read_timeout,
// pool_size, …); unknown options are an error.
func New(rawURL string, opts ...Option) (redis.UniversalClient, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if rawURL == "" {
		return nil, errors.New("redisclient: empty URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's message quotes parts of the URL, which may hold the
		// password: say only that it does not parse.
		return nil, errors.New("redisclient: the Redis URL does not parse as a URL (check escaping of special characters in the password)")
	}
	base, mode, _ := strings.Cut(u.Scheme, "+")
	switch base {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("redisclient: unsupported scheme %q (want redis, rediss, unix, redis+cluster or redis+sentinel)", u.Scheme)
	}
	if o.tls != nil && base != "rediss" {
		return nil, fmt.Errorf("redisclient: %s: TLS settings (REDIS_TLS_*) are set but the URL is not rediss://", Redact(rawURL))
	}
	plain := *u
	plain.Scheme = base
	switch {
	case mode == "":
		opts, err := redis.ParseURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisclient: %s: %w", Redact(rawURL), err)
		}
		opts.TLSConfig = o.merge(opts.TLSConfig)
		return redis.NewClient(opts), nil
	case mode == "cluster" && base != "unix":
		opts, err := redis.ParseClusterURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisclient: %s: %w", Redact(rawURL), err)
		}
		opts.TLSConfig = o.merge(opts.TLSConfig)
		return redis.NewClusterClient(opts), nil
	case mode == "sentinel" && base != "unix":
		opts, err := redis.ParseFailoverURL(plain.String())
		if err != nil {
			return nil, fmt.Errorf("redisclient: %s: %w", Redact(rawURL), err)
		}
		if opts.MasterName == "" {
			return nil, fmt.Errorf("redisclient: %s: sentinel URL needs ?master_name=", Redact(rawURL))
		}
		opts.TLSConfig = o.merge(opts.TLSConfig)
		return redis.NewFailoverClient(opts), nil
	default:
		return nil, fmt.Errorf("redisclient: unsupported scheme %q", u.Scheme)
	}
}

// Option changes how New connects.
type Option func(*options)

type options struct {
	tls *tls.Config
}

// WithTLS adds to a rediss:// URL's TLS what the URL cannot say: the roots
// that verify the server and a client certificate (platform/tlsconfig's
// Redis). A nil cfg changes nothing; with any other URL scheme it is an
// error, so TLS settings are never silently ignored.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// merge returns the URL's TLS configuration (nil for plaintext) with the
// roots and client certificate of o.tls; the server name stays the URL's.
func (o options) merge(fromURL *tls.Config) *tls.Config {
	if fromURL == nil || o.tls == nil {
		return fromURL
	}
	cfg := fromURL.Clone()
	cfg.RootCAs = o.tls.RootCAs
	cfg.Certificates = o.tls.Certificates
	cfg.GetClientCertificate = o.tls.GetClientCertificate
	if o.tls.MinVersion > cfg.MinVersion {
		cfg.MinVersion = o.tls.MinVersion
	}
	return cfg
}

// StartupTimeout is how long Open waits for Redis to answer.
const StartupTimeout = 5 * time.Second

// Open is what a service does at start-up: New, then Ping within
// StartupTimeout, so a wrong or unreachable REDIS_URL fails at once with an
// error naming the (redacted) URL. The client is closed again on failure.
func Open(ctx context.Context, rawURL string, opts ...Option) (redis.UniversalClient, error) {
	c, err := New(rawURL, opts...)
	if err != nil {
		return nil, err
	}
	if err := Ping(ctx, c, StartupTimeout); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redisclient: %s: %w", Redact(rawURL), errors.Unwrap(err))
	}
	return c, nil
}

// Ping checks that the server answers within timeout; services call it at
// start-up so a wrong REDIS_URL fails fast with a clear error.
func Ping(ctx context.Context, c redis.UniversalClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisclient: ping: %w", err)
	}
	return nil
}

// Redact returns rawURL with any password replaced, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// FormatTime is how paperroute keeps an instant in a Redis hash field:
// RFC 3339 in UTC with nanoseconds, "" for the zero time. Readable in
// redis-cli, sortable as text, exact on the way back.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ParseTime reads what FormatTime wrote; "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("redisclient: stored time %q: %w", s, err)
	}
	return t, nil
}
