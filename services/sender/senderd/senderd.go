// Package senderd runs the sender service: the gRPC API, the HTTP side
// (/healthz, /metrics) and the delivery workers. It is public so that the
// all-in-one binary (cmd/paperroute) can run the service in-process.
package senderd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/httpserver"
	"github.com/paperroute/paperroute/platform/listener"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/platform/redisclient"
	"github.com/paperroute/paperroute/services/sender/internal/config"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/grpcapi"
	sendermetrics "github.com/paperroute/paperroute/services/sender/internal/metrics"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

// Deps are the things the caller provides; everything else comes from getenv.
type Deps struct {
	// Logger is required.
	Logger *slog.Logger
	// GRPCListener and HTTPListener, when set, are used instead of listening on the
	// configured addresses (tests and the all-in-one binary pre-bind them).
	// Run takes ownership: they are closed when Run returns.
	GRPCListener net.Listener
	HTTPListener net.Listener
}

// Run runs the service until ctx is done, then shuts down gracefully and returns nil.
// A bad configuration or an unreachable Redis at start-up is an error returned at once.
// An unreachable SMTP relay is not: the workers keep dialling with backoff
// while the API accepts mail into the queue.
func Run(ctx context.Context, getenv func(string) string, deps Deps) (err error) {
	// Listeners handed in are ours; close those Serve never got to.
	defer listener.Close(deps.GRPCListener, deps.HTTPListener)
	if deps.Logger == nil {
		return errors.New("senderd: Deps.Logger is required")
	}
	log := deps.Logger
	cfg, err := config.Load(ctx, getenv)
	if err != nil {
		return fmt.Errorf("senderd: %w", err)
	}

	rdb, err := redisclient.Open(ctx, cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("senderd: %w", err)
	}
	defer rdb.Close()
	store := redisstore.New(rdb, cfg.Partitions)
	if err := store.EnsureGroups(ctx); err != nil {
		if errors.Is(err, redisstore.ErrPartitionsChanged) {
			return fmt.Errorf("senderd: SENDER_PARTITIONS: %w", err)
		}
		return fmt.Errorf("senderd: %w", err)
	}

	reg := metrics.NewRegistry()
	deliveryMetrics, err := sendermetrics.NewDelivery(reg)
	if err != nil {
		return fmt.Errorf("senderd: %w", err)
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
		return fmt.Errorf("senderd: %w", err)
	}
	dispatcher, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Partitions:  cfg.Partitions,
		Workers:     cfg.Workers,
		Consumer:    cfg.Consumer,
		MaxAttempts: cfg.MaxAttempts,
		RetryAfter:  cfg.RetryAfter,
		MaxPerConn:  cfg.SMTPMaxPerConn,
		Grace:       cfg.ShutdownGrace,
		Logger:      log,
		Metrics:     deliveryMetrics,
	}, store, mailer)
	if err != nil {
		return fmt.Errorf("senderd: %w", err)
	}

	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken})
	if err != nil {
		return fmt.Errorf("senderd: %w", err)
	}
	srv, err := grpcserver.New(grpcserver.Config{
		Logger:        log,
		Registerer:    reg,
		Authorizer:    authz,
		MaxRecvBytes:  maxRecvBytes,
		ShutdownGrace: cfg.ShutdownGrace,
	})
	if err != nil {
		return fmt.Errorf("senderd: %w", err)
	}
	senderv1.RegisterSenderServiceServer(srv.GRPC, grpcapi.NewServer(queue.NewService(store, nil)))

	mux := http.NewServeMux()
	httpserver.Routes(mux, reg, log, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })

	grpcLis, err := listener.Open(deps.GRPCListener, cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("senderd: gRPC: %w", err)
	}
	defer listener.Close(grpcLis)
	httpLis, err := listener.Open(deps.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("senderd: HTTP: %w", err)
	}
	defer listener.Close(httpLis)
	log.InfoContext(ctx, "sender: serving",
		"grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"smtp", cfg.SMTPAddr, "partitions", cfg.Partitions, "workers", cfg.Workers, "consumer", cfg.Consumer)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, grpcLis) })
	g.Go(func() error { return httpserver.Serve(gctx, httpLis, mux, cfg.ShutdownGrace) })
	g.Go(func() error { return dispatcher.Run(gctx) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("senderd: %w", err)
	}
	return nil
}

// maxRecvBytes bounds one request. An Enqueue batch of 1000 digest messages
// by content id is well under 1 MiB; inline content is for small mail.
const maxRecvBytes = 8 << 20
