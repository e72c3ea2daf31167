// Package digestd runs the digest service: its gRPC API, its /healthz and
// /metrics HTTP side, and the digest runs in the background. It is public
// so that the all-in-one binary (cmd/paperroute) can run the service in its
// own process.
package digestd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/httpserver"
	"github.com/paperroute/paperroute/platform/listener"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/platform/redisclient"

	"github.com/paperroute/paperroute/services/digest/internal/config"
	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/grpcapi"
	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/render"
)

// Deps are the things the caller provides; everything else comes from getenv.
type Deps struct {
	// Logger is required.
	Logger *slog.Logger
	// GRPCListener and HTTPListener, when set, are used instead of listening on the
	// configured addresses (tests and the all-in-one binary pre-bind them).
	GRPCListener net.Listener
	HTTPListener net.Listener
}

// Run runs the service until ctx is done, then shuts down gracefully and returns nil.
// A bad configuration or an unreachable Redis at start-up is an error returned at once.
// Run closes the listeners in deps, also when it fails to start.
func Run(ctx context.Context, getenv func(string) string, deps Deps) error {
	defer listener.Close(deps.GRPCListener, deps.HTTPListener)
	if deps.Logger == nil {
		return errors.New("digestd: Deps.Logger is required")
	}
	log := deps.Logger
	cfg, err := config.Load(ctx, getenv)
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	if cfg.PostalAddress == config.DefaultPostalAddress {
		log.Warn("DIGEST_POSTAL_ADDRESS is the placeholder; production mail must carry the sender's real postal address")
	}

	rdb, err := redisclient.Open(ctx, cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	defer closeAndLog(log, "redis", rdb.Close)

	subConn, err := grpcclient.New(cfg.SubscriberAddr, cfg.ServiceToken)
	if err != nil {
		return fmt.Errorf("digestd: subscriber client: %w", err)
	}
	defer closeAndLog(log, "subscriber client", subConn.Close)
	sendConn, err := grpcclient.New(cfg.SenderAddr, cfg.ServiceToken)
	if err != nil {
		return fmt.Errorf("digestd: sender client: %w", err)
	}
	defer closeAndLog(log, "sender client", sendConn.Close)

	renderer, err := render.New(cfg.PostalAddress)
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	store := redisstore.New(rdb)
	svc, err := digest.New(digest.Config{
		Papers:           store,
		Runs:             store,
		Subscribers:      peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(subConn)),
		Sender:           peers.NewSender(senderv1.NewSenderServiceClient(sendConn)),
		Renderer:         renderer,
		Logger:           log,
		PapersPerEdition: cfg.PapersPerEdition,
	})
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	papers, err := library.New(library.Config{Store: store, MaxImportBytes: cfg.MaxImportBytes})
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}

	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken})
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	reg := metrics.NewRegistry()
	srv, err := grpcserver.New(grpcserver.Config{
		Logger:        log,
		Registerer:    reg,
		Authorizer:    authz,
		MaxRecvBytes:  cfg.MaxRecvBytes(),
		ShutdownGrace: cfg.ShutdownGrace,
	})
	if err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	digestv1.RegisterDigestServiceServer(srv.GRPC, grpcapi.NewServer(svc, papers))

	mux := http.NewServeMux()
	httpserver.Routes(mux, reg, log, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })

	grpcLis, err := listener.Open(deps.GRPCListener, cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("digestd: gRPC: %w", err)
	}
	defer listener.Close(grpcLis)
	httpLis, err := listener.Open(deps.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("digestd: HTTP: %w", err)
	}
	defer listener.Close(httpLis)
	log.Info("digest service listening", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"redis", redisclient.Redact(cfg.RedisURL), "subscriber", cfg.SubscriberAddr, "sender", cfg.SenderAddr)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, grpcLis) })
	g.Go(func() error { return httpserver.Serve(gctx, httpLis, mux, cfg.ShutdownGrace) })
	g.Go(func() error {
		// Runs stop when the service does: each in-flight run is marked
		// FAILED "interrupted by shutdown; run it again".
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownGrace)
		defer cancel()
		return svc.Shutdown(shutdownCtx)
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("digestd: %w", err)
	}
	log.Info("digest service stopped")
	return nil
}

func closeAndLog(log *slog.Logger, what string, closeFn func() error) {
	if err := closeFn(); err != nil {
		log.Warn("digestd: close "+what, "err", err)
	}
}
