// Package senderd runs the sender service: the gRPC API, the HTTP side
// (/healthz, /metrics) and the delivery workers. It is public so that the
// all-in-one binary (cmd/paperroute) can run the service in-process.
package senderd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/sender/internal/config"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/grpcapi"
	sendermetrics "github.com/paperroute/paperroute/services/sender/internal/metrics"
	"github.com/paperroute/paperroute/services/sender/internal/peers"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
	"github.com/paperroute/paperroute/services/sender/internal/sendtrace"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

// Deps are what the caller provides (a logger, optionally pre-bound
// listeners); everything else comes from getenv.
type Deps = service.Deps

// Run runs the service until ctx is done, then shuts down gracefully and returns nil.
// A bad configuration or an unreachable Redis at start-up is an error returned at once.
// An unreachable SMTP relay is not: the workers keep dialling with backoff
// while the API accepts mail into the queue.
func Run(ctx context.Context, getenv func(string) string, deps Deps) error {
	return service.RunFromEnv(ctx, getenv, deps, "SENDER", config.Load, func(cfg config.Config) service.Spec {
		return service.Spec{
			Name:          "sender",
			GRPCAddr:      cfg.GRPCAddr,
			HTTPAddr:      cfg.HTTPAddr,
			RedisURL:      cfg.RedisURL,
			Policy:        grpcapi.Policy(),
			Tokens:        auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken},
			MaxRecvBytes:  maxRecvBytes,
			ShutdownGrace: cfg.ShutdownGrace,
			LogAttrs: []any{"smtp", cfg.SMTPAddr, "partitions", cfg.Partitions,
				"workers", cfg.Workers, "consumer", cfg.Consumer},
			Setup: func(ctx context.Context, s *service.Server) error { return setup(ctx, s, cfg) },
		}
	})
}

// setup wires the queue, the SMTP mailer and the dispatcher onto s.
func setup(ctx context.Context, s *service.Server, cfg config.Config) error {
	if err := checkEvictionPolicy(ctx, s.Redis, cfg.AllowEviction, s.Logger); err != nil {
		return err
	}
	store := redisstore.New(s.Redis, cfg.Partitions).WithRetention(cfg.Retention)
	if err := store.EnsureGroups(ctx); err != nil {
		if errors.Is(err, redisstore.ErrPartitionsChanged) {
			return fmt.Errorf("SENDER_PARTITIONS: %w", err)
		}
		return err
	}
	deliveryMetrics, err := sendermetrics.NewDelivery(s.Metrics)
	if err != nil {
		return err
	}
	relayMetrics, err := sendermetrics.NewRelay(s.Metrics)
	if err != nil {
		return err
	}
	if _, err := sendermetrics.NewQueue(s.Metrics, store, s.Logger); err != nil {
		return err
	}
	mailer, err := relays(cfg)
	if err != nil {
		return err
	}
	// SENDER_SMTP_CONNECTIONS: a pool shared by the workers, or (0) one
	// connection per worker.
	var relay delivery.Mailer = mailer
	closeRelay := func() {}
	if cfg.SMTPConnections > 0 {
		pool, err := smtpmail.NewPool(mailer, cfg.SMTPConnections, cfg.SMTPMaxPerConn)
		if err != nil {
			return err
		}
		relay, closeRelay = pool, pool.Close
	}
	relay = sendtrace.Mailer(relayMetrics.Mailer(relay, smtpmail.ReplyCode), s.TracerProvider)
	dispatcher, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Partitions:    cfg.Partitions,
		Workers:       cfg.Workers,
		Consumer:      cfg.Consumer,
		MaxAttempts:   cfg.MaxAttempts,
		RetryAfter:    cfg.RetryAfter,
		RetryMaxDelay: cfg.RetryMaxDelay,
		Lease:         cfg.Lease,
		RetryUnknown:  cfg.RetryUnknown,
		MaxPerConn:    cfg.SMTPMaxPerConn,
		Grace:         cfg.ShutdownGrace,
		Logger:        s.Logger,
		Metrics:       deliveryMetrics,
		RateLimiter:   rateLimiter(s, cfg, relayMetrics),
		Pacer:         relayPacer(s, cfg, relayMetrics),
	}, redisstore.NewReadAhead(store), relay)
	if err != nil {
		return err
	}
	subConn, err := grpcclient.New(cfg.SubscriberAddr, cfg.ServiceToken, s.PeerOptions()...)
	if err != nil {
		return fmt.Errorf("subscriber client: %w", err)
	}
	s.OnClose("subscriber client", subConn.Close)
	reporter := delivery.NewReporter(store, peers.NewSubscribers(subConn), cfg.Partitions, s.Logger)
	s.Go("failure reporter", reporter.Run)
	// Samples the delivery counters once a minute for GetQueueStats' rates
	// (every replica tries; the first each minute wins).
	s.Go("stats sampler", store.RunSampler)
	senderv1.RegisterSenderServiceServer(s.GRPC, grpcapi.NewServer(queue.NewService(store, nil)).WithMessageIDDomain(cfg.MessageIDDomain))
	s.Go("dispatcher", func(ctx context.Context) error {
		defer closeRelay() // the pool's idle connections, after the last send
		return dispatcher.Run(ctx)
	})
	return nil
}

// maxRecvBytes bounds one request. An Enqueue batch of 1000 digest messages
// by content id is well under 1 MiB; inline content is for small mail.
const maxRecvBytes = 8 << 20

// checkEvictionPolicy refuses a Redis that may evict keys (evicted records
// and entries are lost mail) unless allowed, then it warns loudly. A Redis
// that does not allow CONFIG GET (some managed services) gets a warning.
func checkEvictionPolicy(ctx context.Context, rdb redis.UniversalClient, allow bool, log *slog.Logger) error {
	vals, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		log.WarnContext(ctx, "sender: cannot read Redis' maxmemory-policy; make sure it is noeviction, or mail may be lost", "err", err)
		return nil
	}
	policy := vals["maxmemory-policy"]
	if policy == "" || policy == "noeviction" {
		return nil
	}
	if !allow {
		return fmt.Errorf("redis maxmemory-policy is %q: set it to noeviction (evicted keys are lost mail), or SENDER_ALLOW_EVICTION=true to run anyway", policy)
	}
	log.ErrorContext(ctx, "sender: Redis may evict keys (maxmemory-policy is not noeviction): queued mail can be lost", "maxmemory-policy", policy)
	return nil
}

// rateLimiter is the shared GCRA limiter of all relays together, or nil
// when no limit is set; m counts its refusals. The per-relay limits are the
// relay pacer's.
func rateLimiter(s *service.Server, cfg config.Config, m *sendermetrics.Relay) delivery.RateLimiter {
	if cfg.RateLimit == 0 {
		return nil
	}
	return redisstore.NewRateLimiter(s.Redis, cfg.RateLimit, 0, "").OnLimited(m.RateLimited)
}

// relayPacer paces each relay for all replicas: its own limit
// (SENDER_SMTP_RATE_LIMIT, SENDER_SMTP_FALLBACK_RATE_LIMITS) and the
// slowdown its throttling replies ask for, up to a gap of
// min(10s, SENDER_RETRY_MAX_DELAY) between sends; m counts the sends it
// holds back.
func relayPacer(s *service.Server, cfg config.Config, m *sendermetrics.Relay) delivery.RelayPacer {
	return redisstore.NewRelayPacer(s.Redis, cfg.RelayRateLimits(), 0,
		redisstore.PacerConfig{MaxGap: min(10*time.Second, cfg.RetryMaxDelay)}).OnLimited(m.RateLimited)
}

// relays is the SMTP mailer: the relay, with failover to the fallbacks.
func relays(cfg config.Config) (delivery.Mailer, error) {
	var signer *smtpmail.DKIM
	if cfg.DKIMKeyFile != "" {
		pemBytes, err := os.ReadFile(cfg.DKIMKeyFile)
		if err != nil {
			return nil, fmt.Errorf("SENDER_DKIM_KEY_FILE: %w", err)
		}
		key, err := smtpmail.ParseDKIMKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("SENDER_DKIM_KEY_FILE: %w", err)
		}
		signer = &smtpmail.DKIM{Domain: cfg.DKIMDomain, Selector: cfg.DKIMSelector, Signer: key}
	}
	var all []delivery.Mailer
	for _, addr := range append([]string{cfg.SMTPAddr}, cfg.SMTPFallbackAddrs...) {
		m, err := smtpmail.New(smtpmail.Config{
			Addr:            addr,
			Username:        cfg.SMTPUsername,
			Password:        cfg.SMTPPassword,
			TLS:             smtpmail.TLSMode(cfg.SMTPTLS),
			Timeout:         cfg.SMTPTimeout,
			From:            cfg.From,
			MessageIDDomain: cfg.MessageIDDomain,
			ListID:          cfg.ListID,
			VERP:            cfg.VERP,
			DKIM:            signer,
		})
		if err != nil {
			return nil, err
		}
		all = append(all, m)
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return smtpmail.NewFailover(all[0], all[1:]...), nil
}
