// Package subscriberd runs the subscriber service: the gRPC API, the link
// pages with /healthz and /metrics, on Redis, sending mail through the
// sender service. It is public so that the all-in-one paperroute binary can
// run the service in-process; cmd/subscriber is a thin main around Run.
package subscriberd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/subscriber/internal/config"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/metrics"
	"github.com/paperroute/paperroute/services/subscriber/internal/pages"
	"github.com/paperroute/paperroute/services/subscriber/internal/peers"
	"github.com/paperroute/paperroute/services/subscriber/internal/redisstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Deps are what the caller provides (a logger, optionally pre-bound
// listeners); everything else comes from getenv.
type Deps = service.Deps

// Run runs the service until ctx is done, then shuts down gracefully and returns nil.
// A bad configuration or an unreachable Redis at start-up is an error returned at once.
func Run(ctx context.Context, getenv func(string) string, deps Deps) error {
	return service.RunFromEnv(ctx, getenv, deps, "SUBSCRIBER", config.Load, func(cfg config.Config) service.Spec {
		return service.Spec{
			Name:          "subscriber",
			GRPCAddr:      cfg.GRPCAddr,
			HTTPAddr:      cfg.HTTPAddr,
			RedisURL:      cfg.RedisURL,
			Policy:        grpcapi.Policy(),
			Tokens:        auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken},
			ShutdownGrace: cfg.ShutdownGrace,
			LogAttrs:      []any{"public_url", cfg.PublicURL, "sender", cfg.SenderAddr},
			Setup:         func(ctx context.Context, s *service.Server) error { return setup(ctx, s, cfg) },
		}
	})
}

// setup wires the subscription service, its gRPC API and the link pages
// onto s.
func setup(_ context.Context, s *service.Server, cfg config.Config) error {
	senderConn, err := grpcclient.New(cfg.SenderAddr, cfg.ServiceToken, s.PeerOptions()...)
	if err != nil {
		return fmt.Errorf("sender client: %w", err)
	}
	s.OnClose("sender client", senderConn.Close)
	mailer, err := peers.NewSender(senderv1.NewSenderServiceClient(senderConn), cfg.ConfirmTokenTTL)
	if err != nil {
		return err
	}
	keyring, err := linktoken.NewKeyring(cfg.TokenKeys)
	if err != nil {
		return err
	}
	jobs := redisstore.NewJobs(s.Redis, consumerName()).WithTracerProvider(s.TracerProvider)
	store := redisstore.New(s.Redis, cfg.EmailHashKey)
	lifecycle, err := metrics.NewLifecycle(s.Metrics)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if _, err := metrics.NewSubscribers(s.Metrics, store, s.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	svc, err := subscription.New(subscription.Config{
		Store:               store,
		Metrics:             lifecycle,
		Mailer:              mailer,
		Jobs:                jobs,
		Limiter:             redisstore.NewLimiter(s.Redis, cfg.EmailHashKey),
		Catalogue:           subscription.StaticCatalogue(cfg.Topics),
		Keyring:             keyring,
		PublicURL:           cfg.PublicURL,
		ConfirmTTL:          cfg.ConfirmTokenTTL,
		PendingTTL:          cfg.PendingTTL,
		ClientDataRetention: cfg.ClientDataRetention,
		DefaultDeliveryHour: cfg.DefaultDeliveryHour,
		DefaultTimezone:     cfg.DefaultTimezone,
		Limits:              cfg.Limits,
	})
	if err != nil {
		return err
	}
	s.Go("jobs", func(ctx context.Context) error { return jobs.Run(ctx, s.Logger, svc.HandleJob) })
	s.Go("housekeeping", func(ctx context.Context) error { return housekeeping(ctx, s.Logger, svc) })
	subscriberv1.RegisterSubscriberServiceServer(s.GRPC, grpcapi.NewServer(svc))

	pageHandler, err := pages.New(svc, s.Logger, pages.Options{
		FormSecret:      cfg.TokenKeys[0].Secret,
		DefaultTimezone: cfg.DefaultTimezone,
		DefaultHour:     &cfg.DefaultDeliveryHour,
		ClientIP:        s.ClientIP,
	})
	if err != nil {
		return err
	}
	pageHandler.Register(s.Mux)
	s.WrapHTTP(pages.SecurityHeaders)
	return nil
}

// consumerName names this process in the job stream's consumer group.
func consumerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// housekeeping purges expired PENDING sign-ups and drops IP/UA past their
// retention, every minute, until ctx ends.
func housekeeping(ctx context.Context, log *slog.Logger, svc *subscription.Service) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		for {
			n, err := svc.PurgeExpired(ctx, 1000)
			if err != nil && ctx.Err() == nil {
				log.ErrorContext(ctx, "purge expired sign-ups", "err", err)
			}
			if err != nil || n < 1000 {
				break
			}
		}
		if _, err := svc.DropOldClientData(ctx, 1000); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "drop old client data", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
