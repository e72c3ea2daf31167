// Package subscriberd runs the subscriber service: the gRPC API, the link
// pages with /healthz and /metrics, on Redis, sending mail through the
// sender service. It is public so that the all-in-one paperroute binary can
// run the service in-process; cmd/subscriber is a thin main around Run.
package subscriberd

import (
	"context"
	"fmt"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/platform/tlsconfig"
	"github.com/paperroute/paperroute/services/subscriber/internal/config"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
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
	cfg, err := config.Load(ctx, getenv)
	if err != nil {
		service.CloseListeners(deps)
		return fmt.Errorf("subscriber: %w", err)
	}
	tlsEnv, err := tlsconfig.Load(ctx, getenv)
	if err != nil {
		service.CloseListeners(deps)
		return fmt.Errorf("subscriber: %w", err)
	}
	return service.Run(ctx, deps, service.Spec{
		Name:          "subscriber",
		GRPCAddr:      cfg.GRPCAddr,
		HTTPAddr:      cfg.HTTPAddr,
		RedisURL:      cfg.RedisURL,
		Policy:        grpcapi.Policy(),
		Tokens:        auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken},
		ShutdownGrace: cfg.ShutdownGrace,
		TLS:           tlsEnv,
		LogAttrs:      []any{"public_url", cfg.PublicURL, "sender", cfg.SenderAddr},
		Setup:         func(ctx context.Context, s *service.Server) error { return setup(ctx, s, cfg) },
	})
}

// setup wires the subscription service, its gRPC API and the link pages
// onto s.
func setup(_ context.Context, s *service.Server, cfg config.Config) error {
	senderConn, err := grpcclient.New(cfg.SenderAddr, cfg.ServiceToken, grpcclient.WithTLS(s.PeerTLS))
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
	svc, err := subscription.New(subscription.Config{
		Store:      redisstore.New(s.Redis, cfg.EmailHashKey),
		Mailer:     mailer,
		Keyring:    keyring,
		PublicURL:  cfg.PublicURL,
		ConfirmTTL: cfg.ConfirmTokenTTL,
	})
	if err != nil {
		return err
	}
	subscriberv1.RegisterSubscriberServiceServer(s.GRPC, grpcapi.NewServer(svc))

	pageHandler, err := pages.New(svc, s.Logger)
	if err != nil {
		return err
	}
	pageHandler.Register(s.Mux)
	s.WrapHTTP(pages.SecurityHeaders)
	return nil
}
