// Package config loads the sender service's configuration from environment
// variables.
package config

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/mailaddr"
)

// TLSModes are the accepted values of SENDER_SMTP_TLS (the smtpmail
// package defines what each means).
func TLSModes() []string { return []string{"opportunistic", "mandatory", "none", "implicit"} }

// Config is everything the sender service reads from its environment.
type Config struct {
	// GRPCAddr is where the gRPC API listens. SENDER_GRPC_ADDR, default
	// 127.0.0.1:50053.
	GRPCAddr string
	// HTTPAddr serves /healthz and /metrics. SENDER_HTTP_ADDR, default
	// 127.0.0.1:8083.
	HTTPAddr string
	// RedisURL is SENDER_REDIS_URL, or REDIS_URL when that is unset
	// (default redis://127.0.0.1:6379/0). See platform/redisclient for the
	// accepted forms.
	RedisURL string

	// SMTPAddr is the relay's host:port. SENDER_SMTP_ADDR, default
	// 127.0.0.1:2525 (the dev mail catcher).
	SMTPAddr string
	// SMTPUsername enables SMTP AUTH when set. SENDER_SMTP_USERNAME.
	SMTPUsername string
	// SMTPPassword goes with SMTPUsername. SENDER_SMTP_PASSWORD.
	SMTPPassword string
	// SMTPTLS is opportunistic (STARTTLS if offered), mandatory (STARTTLS
	// required), none, or implicit (TLS from the first byte, e.g. port 465).
	// SENDER_SMTP_TLS, default mandatory (none only for local catchers).
	SMTPTLS string
	// SMTPTimeout bounds a dial and each message's SMTP transaction.
	// SENDER_SMTP_TIMEOUT, default 30s.
	SMTPTimeout time.Duration
	// SMTPMaxPerConn is how many messages one connection carries before it
	// is replaced. SENDER_SMTP_MAX_PER_CONN, default 1000.
	SMTPMaxPerConn int
	// SMTPConnections, when positive, is how many SMTP connections this
	// process keeps to the relay, shared by all workers (a worker holds one
	// for a single message, and the pool writes a waiting worker's envelope
	// ahead with the message before it: one round trip per message); 0
	// gives each worker a connection of its own. SENDER_SMTP_CONNECTIONS,
	// default 4.
	SMTPConnections int

	// From is the From header and envelope sender, parsed strictly from
	// SENDER_FROM (default "paperroute <digest@paperroute.localhost>").
	From *netmail.Address
	// MessageIDDomain is the right-hand side of Message-ID headers.
	// SENDER_MESSAGE_ID_DOMAIN, default the domain of From.
	MessageIDDomain string
	// ListID is the RFC 2919 List-Id header of bulk mail ("Trending
	// papers <digest.example.org>"), so mail clients can filter and
	// group the digest. SENDER_LIST_ID, default
	// "paperroute digest <digest.<MessageIDDomain>>".
	ListID string

	// Workers is the number of delivery goroutines, each taking one message
	// at a time over a connection borrowed from the pool (SMTPConnections;
	// several per connection keep it busy while each does its Redis work),
	// or over its own when SMTPConnections is 0. SENDER_WORKERS, default 16.
	Workers int
	// Partitions is the number of queue partitions. It must not change for
	// an existing queue: message records and entries are found by it.
	// SENDER_PARTITIONS, default 4.
	Partitions int
	// MaxAttempts is how many delivery attempts a message gets before it is
	// dead-lettered. SENDER_MAX_ATTEMPTS, default 8.
	MaxAttempts int
	// RetryAfter is the retry delay after a temporary failure, the idle
	// time after which another consumer's unfinished entry is taken over,
	// and the longest wait between dials to an unreachable relay.
	// SENDER_RETRY_AFTER, default 30s.
	RetryAfter time.Duration
	// Lease is how long a worker's delivery lease on a message lasts: the
	// longest one send may take, and after a crash how long before the
	// message may be sent by another worker. SENDER_LEASE, default twice
	// SENDER_SMTP_TIMEOUT; at least SENDER_SMTP_TIMEOUT + 1s.
	Lease time.Duration
	// RetryUnknown retries a message once, after the lease, when a send's
	// outcome is unknown (no reply to the final dot): at most one extra
	// copy. SENDER_UNKNOWN_OUTCOME=retry-once (default) or never (the
	// message is dead-lettered instead: a possible loss, never a duplicate).
	RetryUnknown bool
	// RetryMaxDelay caps the exponential backoff between retries after
	// temporary failures. SENDER_RETRY_MAX_DELAY, default 30m.
	RetryMaxDelay time.Duration
	// Retention is how long finished message records are kept (GetMessage,
	// ListMessages). SENDER_RECORD_RETENTION, default 168h (7 days).
	Retention time.Duration
	// AllowEviction lets the service start on a Redis whose
	// maxmemory-policy is not noeviction (with a loud warning): evicted
	// keys are lost mail. SENDER_ALLOW_EVICTION, default false.
	AllowEviction bool
	// SMTPFallbackAddrs are relays (host:port) tried in order when the
	// relay at SMTPAddr cannot be reached; same credentials and TLS.
	// SENDER_SMTP_FALLBACK_ADDRS, comma-separated, default none.
	SMTPFallbackAddrs []string
	// VERP makes the envelope sender <local>+<message id>@<domain> of
	// SENDER_FROM, so bounces name their message. SENDER_VERP, default false.
	VERP bool
	// DKIMDomain, DKIMSelector and DKIMKeyFile enable DKIM signing (all
	// three or none): d= and s= of the signature, and a PEM private key
	// (PKCS#8 RSA or Ed25519, or PKCS#1 RSA). SENDER_DKIM_DOMAIN,
	// SENDER_DKIM_SELECTOR, SENDER_DKIM_KEY_FILE.
	DKIMDomain   string
	DKIMSelector string
	DKIMKeyFile  string
	// RateLimit bounds the messages per second sent by all replicas
	// together (GCRA in Redis). SENDER_RATE_LIMIT, default 0 (none).
	RateLimit int
	// SMTPRateLimit bounds the messages per second all replicas send to
	// the relay. SENDER_SMTP_RATE_LIMIT, default 0 (none).
	SMTPRateLimit int
	// SMTPFallbackRateLimits bound the messages per second all replicas
	// send to each fallback relay, in the order of SMTPFallbackAddrs (0:
	// none). SENDER_SMTP_FALLBACK_RATE_LIMITS, comma-separated, one per
	// fallback; default: SMTPRateLimit for each.
	SMTPFallbackRateLimits []int
	// SubscriberAddr is the subscriber service's gRPC address, where hard
	// bounces are reported (RecordDeliveryFailure). SUBSCRIBER_GRPC_ADDR,
	// default 127.0.0.1:50051.
	SubscriberAddr string
	// Consumer is this process's name in the consumer group. It should be
	// unique per running process. SENDER_CONSUMER, default hostname-pid.
	Consumer string

	// AdminToken is the operator bearer token. PAPERROUTE_ADMIN_TOKEN,
	// required.
	AdminToken string
	// ServiceToken is the token paperroute services call each other with.
	// PAPERROUTE_SERVICE_TOKEN, required.
	ServiceToken string
	// ShutdownGrace is how long in-flight calls and sends get to finish at
	// shutdown. SHUTDOWN_GRACE, default 10s.
	ShutdownGrace time.Duration
}

// env mirrors Config with the variables as they are spelled in the
// environment.
type env struct {
	GRPCAddr        string        `env:"SENDER_GRPC_ADDR"`
	HTTPAddr        string        `env:"SENDER_HTTP_ADDR"`
	RedisURL        string        `env:"SENDER_REDIS_URL"`
	SharedRedisURL  string        `env:"REDIS_URL, default=redis://127.0.0.1:6379/0"`
	SMTPAddr        string        `env:"SENDER_SMTP_ADDR, default=127.0.0.1:2525"`
	SMTPUsername    string        `env:"SENDER_SMTP_USERNAME"`
	SMTPPassword    string        `env:"SENDER_SMTP_PASSWORD"`
	SMTPTLS         string        `env:"SENDER_SMTP_TLS, default=mandatory"`
	SMTPTimeout     time.Duration `env:"SENDER_SMTP_TIMEOUT, default=30s"`
	SMTPMaxPerConn  int           `env:"SENDER_SMTP_MAX_PER_CONN, default=1000"`
	SMTPConnections int           `env:"SENDER_SMTP_CONNECTIONS, default=4"`
	From            string        `env:"SENDER_FROM, default=paperroute <digest@paperroute.localhost>"`
	MessageIDDomain string        `env:"SENDER_MESSAGE_ID_DOMAIN"`
	ListID          string        `env:"SENDER_LIST_ID"`
	Workers         int           `env:"SENDER_WORKERS, default=16"`
	Partitions      int           `env:"SENDER_PARTITIONS, default=4"`
	MaxAttempts     int           `env:"SENDER_MAX_ATTEMPTS, default=8"`
	RetryAfter      time.Duration `env:"SENDER_RETRY_AFTER, default=30s"`
	Consumer        string        `env:"SENDER_CONSUMER"`
	Lease           time.Duration `env:"SENDER_LEASE"`
	SubscriberAddr  string        `env:"SUBSCRIBER_GRPC_ADDR, default=127.0.0.1:50051"`
	RateLimit       int           `env:"SENDER_RATE_LIMIT, default=0"`
	SMTPFallbacks   string        `env:"SENDER_SMTP_FALLBACK_ADDRS"`
	VERP            bool          `env:"SENDER_VERP, default=false"`
	DKIMDomain      string        `env:"SENDER_DKIM_DOMAIN"`
	DKIMSelector    string        `env:"SENDER_DKIM_SELECTOR"`
	DKIMKeyFile     string        `env:"SENDER_DKIM_KEY_FILE"`
	SMTPRateLimit   int           `env:"SENDER_SMTP_RATE_LIMIT, default=0"`
	SMTPFallbackRL  string        `env:"SENDER_SMTP_FALLBACK_RATE_LIMITS"`
	UnknownOutcome  string        `env:"SENDER_UNKNOWN_OUTCOME, default=retry-once"`
	RetryMaxDelay   time.Duration `env:"SENDER_RETRY_MAX_DELAY, default=30m"`
	Retention       time.Duration `env:"SENDER_RECORD_RETENTION, default=168h"`
	AllowEviction   bool          `env:"SENDER_ALLOW_EVICTION, default=false"`
	AdminToken      string        `env:"PAPERROUTE_ADMIN_TOKEN, required"`
	ServiceToken    string        `env:"PAPERROUTE_SERVICE_TOKEN, required"`
	ShutdownGrace   time.Duration `env:"SHUTDOWN_GRACE, default=10s"`
}

// Load reads the configuration from getenv and validates it.
func Load(ctx context.Context, getenv func(string) string) (Config, error) {
	var e env
	if err := envload.Load(ctx, getenv, &e); err != nil {
		return Config{}, err
	}
	c := Config{
		GRPCAddr:          e.GRPCAddr,
		HTTPAddr:          e.HTTPAddr,
		RedisURL:          e.RedisURL,
		SMTPAddr:          e.SMTPAddr,
		SMTPUsername:      e.SMTPUsername,
		SMTPPassword:      e.SMTPPassword,
		SMTPTLS:           e.SMTPTLS,
		SMTPTimeout:       e.SMTPTimeout,
		SMTPMaxPerConn:    e.SMTPMaxPerConn,
		SMTPConnections:   e.SMTPConnections,
		MessageIDDomain:   e.MessageIDDomain,
		ListID:            e.ListID,
		Workers:           e.Workers,
		Partitions:        e.Partitions,
		MaxAttempts:       e.MaxAttempts,
		RetryAfter:        e.RetryAfter,
		Consumer:          e.Consumer,
		Lease:             e.Lease,
		SubscriberAddr:    e.SubscriberAddr,
		RateLimit:         e.RateLimit,
		SMTPFallbackAddrs: splitList(e.SMTPFallbacks),
		VERP:              e.VERP,
		DKIMDomain:        e.DKIMDomain,
		DKIMSelector:      e.DKIMSelector,
		DKIMKeyFile:       e.DKIMKeyFile,
		SMTPRateLimit:     e.SMTPRateLimit,
		RetryUnknown:      e.UnknownOutcome == "retry-once",
		RetryMaxDelay:     e.RetryMaxDelay,
		Retention:         e.Retention,
		AllowEviction:     e.AllowEviction,
		AdminToken:        e.AdminToken,
		ServiceToken:      e.ServiceToken,
		ShutdownGrace:     e.ShutdownGrace,
	}
	if c.RedisURL == "" {
		c.RedisURL = e.SharedRedisURL
	}
	limits, err := fallbackRateLimits(e.SMTPFallbackRL, len(c.SMTPFallbackAddrs), c.SMTPRateLimit)
	if err != nil {
		return Config{}, fmt.Errorf("config: SENDER_SMTP_FALLBACK_RATE_LIMITS: %w", err)
	}
	c.SMTPFallbackRateLimits = limits
	from, err := ParseFrom(e.From)
	if err != nil {
		return Config{}, fmt.Errorf("config: SENDER_FROM: %w", err)
	}
	c.From = from
	if c.MessageIDDomain == "" {
		c.MessageIDDomain = mailaddr.Domain(from.Address)
	}
	if c.ListID == "" {
		c.ListID = "paperroute digest <digest." + c.MessageIDDomain + ">"
	}
	if e.UnknownOutcome != "retry-once" && e.UnknownOutcome != "never" {
		return Config{}, fmt.Errorf("config: SENDER_UNKNOWN_OUTCOME: %q is not retry-once or never", e.UnknownOutcome)
	}
	if c.Lease == 0 {
		c.Lease = 2 * c.SMTPTimeout
	}
	if c.Consumer == "" {
		// Unique per process, also across restarts in a container (where
		// the pid is always the same): stale names are removed once they
		// own nothing.
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "sender"
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.Consumer = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseFrom parses the From setting strictly: an optional display name and
// an address that passes the same checks as recipients.
func ParseFrom(s string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("not an address like %q: %w", "Name <user@example.com>", err)
	}
	addr, err := mailaddr.Parse(a.Address)
	if err != nil {
		return nil, err
	}
	return &netmail.Address{Name: a.Name, Address: addr.Addr}, nil
}

// Validate checks the values, reporting every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, a := range []struct{ name, addr string }{
		{"SENDER_GRPC_ADDR", c.GRPCAddr}, {"SENDER_HTTP_ADDR", c.HTTPAddr}, {"SENDER_SMTP_ADDR", c.SMTPAddr},
		{"SUBSCRIBER_GRPC_ADDR", c.SubscriberAddr},
	} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			bad("%s: %q is not host:port", a.name, a.addr)
		}
	}
	if c.RedisURL == "" {
		bad("SENDER_REDIS_URL or REDIS_URL: must not be empty")
	}
	if (c.SMTPUsername == "") != (c.SMTPPassword == "") {
		bad("SENDER_SMTP_USERNAME and SENDER_SMTP_PASSWORD: set both or neither")
	}
	if !slices.Contains(TLSModes(), c.SMTPTLS) {
		bad("SENDER_SMTP_TLS: %q is not opportunistic, mandatory, none or implicit", c.SMTPTLS)
	}
	if c.From == nil {
		bad("SENDER_FROM: must be set")
	}
	if _, err := mailaddr.Parse("postmaster@" + c.MessageIDDomain); err != nil {
		bad("SENDER_MESSAGE_ID_DOMAIN: %q is not a valid domain", c.MessageIDDomain)
	}
	if !validListID(c.ListID) {
		bad("SENDER_LIST_ID: %q is not a List-Id (printable ASCII phrase, then <label.domain>; RFC 2919)", c.ListID)
	}
	if c.SMTPTimeout <= 0 {
		bad("SENDER_SMTP_TIMEOUT: must be positive")
	}
	if c.SMTPMaxPerConn < 1 {
		bad("SENDER_SMTP_MAX_PER_CONN: must be at least 1")
	}
	if c.SMTPConnections < 0 || c.SMTPConnections > 1024 {
		bad("SENDER_SMTP_CONNECTIONS: must be between 0 (one per worker) and 1024")
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("SENDER_WORKERS: must be between 1 and 1024")
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		bad("SENDER_PARTITIONS: must be between 1 and 1024")
	}
	if c.MaxAttempts < 1 {
		bad("SENDER_MAX_ATTEMPTS: must be at least 1")
	}
	if c.RetryAfter < 10*time.Millisecond {
		bad("SENDER_RETRY_AFTER: must be at least 10ms")
	}
	if c.Lease < c.SMTPTimeout+time.Second {
		bad("SENDER_LEASE: must be at least SENDER_SMTP_TIMEOUT + 1s (a send must end within its lease)")
	}
	if c.RetryMaxDelay < c.RetryAfter {
		bad("SENDER_RETRY_MAX_DELAY: must be at least SENDER_RETRY_AFTER")
	}
	for _, a := range c.SMTPFallbackAddrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			bad("SENDER_SMTP_FALLBACK_ADDRS: %q is not host:port", a)
		}
	}
	if n := count(c.DKIMDomain != "", c.DKIMSelector != "", c.DKIMKeyFile != ""); n != 0 && n != 3 {
		bad("SENDER_DKIM_DOMAIN, SENDER_DKIM_SELECTOR and SENDER_DKIM_KEY_FILE: set all three or none")
	}
	if c.RateLimit < 0 || c.SMTPRateLimit < 0 {
		bad("SENDER_RATE_LIMIT and SENDER_SMTP_RATE_LIMIT: must not be negative (0: no limit)")
	}
	if c.Retention < time.Hour {
		bad("SENDER_RECORD_RETENTION: must be at least 1h")
	}
	if c.Consumer == "" || len(c.Consumer) > 200 {
		bad("SENDER_CONSUMER: must be 1 to 200 bytes")
	}
	switch {
	case c.AdminToken == "" || c.ServiceToken == "":
		bad("PAPERROUTE_ADMIN_TOKEN and PAPERROUTE_SERVICE_TOKEN: both are required")
	case c.AdminToken == c.ServiceToken:
		bad("PAPERROUTE_ADMIN_TOKEN and PAPERROUTE_SERVICE_TOKEN: must differ")
	}
	if c.ShutdownGrace < 0 {
		bad("SHUTDOWN_GRACE: must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// fallbackRateLimits parses SENDER_SMTP_FALLBACK_RATE_LIMITS: one limit per
// fallback relay, or (empty) the primary's limit for each.
func fallbackRateLimits(s string, fallbacks, primary int) ([]int, error) {
	items := splitList(s)
	if len(items) == 0 {
		out := make([]int, fallbacks)
		for i := range out {
			out[i] = primary
		}
		return out, nil
	}
	if len(items) != fallbacks {
		return nil, fmt.Errorf("%d limits for %d fallback relays (SENDER_SMTP_FALLBACK_ADDRS): give one per relay", len(items), fallbacks)
	}
	out := make([]int, len(items))
	for i, item := range items {
		n, err := strconv.Atoi(item)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a number of messages per second (0: no limit)", item)
		}
		out[i] = n
	}
	return out, nil
}

// RelayRateLimits maps each relay's address to its messages/s limit (0:
// none): the primary's SMTPRateLimit and each fallback's.
func (c Config) RelayRateLimits() map[string]int {
	out := map[string]int{c.SMTPAddr: c.SMTPRateLimit}
	for i, addr := range c.SMTPFallbackAddrs {
		if _, ok := out[addr]; !ok && i < len(c.SMTPFallbackRateLimits) {
			out[addr] = c.SMTPFallbackRateLimits[i]
		}
	}
	return out
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// validListID reports whether v is a safe RFC 2919 List-Id value: an
// optional phrase of printable ASCII, then <list-label.namespace> of
// letters, digits, dots and hyphens, at most 255 bytes; never a line break.
func validListID(v string) bool {
	if len(v) > 255 || !strings.HasSuffix(v, ">") {
		return false
	}
	open := strings.LastIndexByte(v, '<')
	if open < 0 {
		return false
	}
	for _, c := range []byte(v[:open]) {
		if c < 0x20 || c > 0x7e || c == '<' || c == '>' {
			return false
		}
	}
	id := v[open+1 : len(v)-1]
	if !strings.Contains(id, ".") || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
