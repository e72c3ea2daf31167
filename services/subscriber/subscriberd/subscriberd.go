// Package subscriberd runs the subscriber service: the gRPC API, the link
// pages with /healthz and /metrics, on Redis, sending mail through the
// sender service. It is public so that the all-in-one paperroute binary can
// run the service in-process; cmd/subscriber is a thin main around Run.
package subscriberd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/httpserver"
	"github.com/paperroute/paperroute/platform/listener"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/platform/redisclient"
	"github.com/paperroute/paperroute/services/subscriber/internal/config"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/pages"
	"github.com/paperroute/paperroute/services/subscriber/internal/peers"
	"github.com/paperroute/paperroute/services/subscriber/internal/redisstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Deps are the things the caller provides; everything else comes from getenv.
type Deps struct {
	// Logger is required.
	Logger *slog.Logger
	// GRPCListener and HTTPListener, when set, are used instead of listening on the
	// configured addresses (tests and the all-in-one binary pre-bind them).
	// Run owns them from then on and closes them when it returns.
	GRPCListener net.Listener
	HTTPListener net.Listener
}

// Run runs the service until ctx is done, then shuts down gracefully and returns nil.
// A bad configuration or an unreachable Redis at start-up is an error returned at once.
func Run(ctx context.Context, getenv func(string) string, deps Deps) error {
	// Whatever happens, a listener handed to Run is not leaked; closing one
	// the servers already closed is harmless.
	defer listener.Close(deps.GRPCListener, deps.HTTPListener)
	if deps.Logger == nil {
		return errors.New("subscriberd: Deps.Logger is required")
	}
	log := deps.Logger
	cfg, err := config.Load(ctx, getenv)
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}

	rdb, err := redisclient.Open(ctx, cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	defer rdb.Close()

	senderConn, err := grpcclient.New(cfg.SenderAddr, cfg.ServiceToken)
	if err != nil {
		return fmt.Errorf("subscriberd: sender: %w", err)
	}
	defer senderConn.Close()
	mailer, err := peers.NewSender(senderv1.NewSenderServiceClient(senderConn), cfg.ConfirmTokenTTL)
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	keyring, err := linktoken.NewKeyring(cfg.TokenKeys)
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	jobs := redisstore.NewJobs(rdb, consumerName())
	svc, err := subscription.New(subscription.Config{
		Store:               redisstore.New(rdb, cfg.EmailHashKey),
		Mailer:              mailer,
		Jobs:                jobs,
		Limiter:             redisstore.NewLimiter(rdb, cfg.EmailHashKey),
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
		return fmt.Errorf("subscriberd: %w", err)
	}

	reg := metrics.NewRegistry()
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken})
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	gsrv, err := grpcserver.New(grpcserver.Config{
		Logger:        log,
		Registerer:    reg,
		Authorizer:    authz,
		ShutdownGrace: cfg.ShutdownGrace,
	})
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	subscriberv1.RegisterSubscriberServiceServer(gsrv.GRPC, grpcapi.NewServer(svc))

	pageHandler, err := pages.New(svc, log, pages.Options{
		FormSecret:      cfg.TokenKeys[0].Secret,
		DefaultTimezone: cfg.DefaultTimezone,
		DefaultHour:     &cfg.DefaultDeliveryHour,
	})
	if err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	mux := http.NewServeMux()
	pageHandler.Register(mux)
	httpserver.Routes(mux, reg, log, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })

	grpcLis, err := listener.Open(deps.GRPCListener, cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("subscriberd: gRPC: %w", err)
	}
	defer listener.Close(grpcLis)
	httpLis, err := listener.Open(deps.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("subscriberd: HTTP: %w", err)
	}
	defer listener.Close(httpLis)

	log.InfoContext(ctx, "subscriber service started",
		"grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"public_url", cfg.PublicURL, "redis", redisclient.Redact(cfg.RedisURL), "sender", cfg.SenderAddr)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gsrv.Serve(gctx, grpcLis) })
	g.Go(func() error { return jobs.Run(gctx, log, svc.HandleJob) })
	g.Go(func() error { return housekeeping(gctx, log, svc) })
	g.Go(func() error {
		return httpserver.Serve(gctx, httpLis, pages.SecurityHeaders(mux), cfg.ShutdownGrace)
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("subscriberd: %w", err)
	}
	log.InfoContext(ctx, "subscriber service stopped")
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
