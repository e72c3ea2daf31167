// Package senderd runs the sender service: the gRPC API, the HTTP side
// (/healthz, /metrics) and the delivery workers. It is public so that the
// all-in-one binary (cmd/paperroute) can run the service in-process.
package senderd

import (
	"context"
	"errors"
	"fmt"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/sender/internal/config"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/grpcapi"
	sendermetrics "github.com/paperroute/paperroute/services/sender/internal/metrics"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
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
	store := redisstore.New(s.Redis, cfg.Partitions)
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
	mailer, err := smtpmail.New(smtpmail.Config{
		Addr:            cfg.SMTPAddr,
		Username:        cfg.SMTPUsername,
		Password:        cfg.SMTPPassword,
		TLS:             smtpmail.TLSMode(cfg.SMTPTLS),
		Timeout:         cfg.SMTPTimeout,
		From:            cfg.From,
		MessageIDDomain: cfg.MessageIDDomain,
	})
	if err != nil {
		return err
	}
	dispatcher, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Partitions:  cfg.Partitions,
		Workers:     cfg.Workers,
		Consumer:    cfg.Consumer,
		MaxAttempts: cfg.MaxAttempts,
		RetryAfter:  cfg.RetryAfter,
		MaxPerConn:  cfg.SMTPMaxPerConn,
		Grace:       cfg.ShutdownGrace,
		Logger:      s.Logger,
		Metrics:     deliveryMetrics,
	}, store, mailer)
	if err != nil {
		return err
	}
	senderv1.RegisterSenderServiceServer(s.GRPC, grpcapi.NewServer(queue.NewService(store, nil)))
	s.Go("dispatcher", dispatcher.Run)
	return nil
}

// maxRecvBytes bounds one request. An Enqueue batch of 1000 digest messages
// by content id is well under 1 MiB; inline content is for small mail.
const maxRecvBytes = 8 << 20
