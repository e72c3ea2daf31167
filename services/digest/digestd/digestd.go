// Package digestd runs the digest service: its gRPC API, its /healthz and
// /metrics HTTP side, and the digest runs in the background. It is public
// so that the all-in-one binary (cmd/paperroute) can run the service in its
// own process.
package digestd

import (
	"context"
	"fmt"
	"os"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/digest/internal/config"
	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/grpcapi"
	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/metrics"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/poller"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/render"
	"github.com/paperroute/paperroute/services/digest/internal/runtrace"
)

// Deps are what the caller provides (a logger, optionally pre-bound
// listeners); everything else comes from getenv.
type Deps = service.Deps

// Run runs the service until ctx is done, then shuts down gracefully and returns nil.
// A bad configuration or an unreachable Redis at start-up is an error returned at once.
// Run closes the listeners in deps, also when it fails to start.
func Run(ctx context.Context, getenv func(string) string, deps Deps) error {
	return service.RunFromEnv(ctx, getenv, deps, "DIGEST", config.Load, func(cfg config.Config) service.Spec {
		return service.Spec{
			Name:          "digest",
			GRPCAddr:      cfg.GRPCAddr,
			HTTPAddr:      cfg.HTTPAddr,
			RedisURL:      cfg.RedisURL,
			Policy:        grpcapi.Policy(),
			Tokens:        auth.Tokens{Admin: cfg.AdminToken, Service: cfg.ServiceToken},
			MaxRecvBytes:  cfg.MaxRecvBytes(),
			ShutdownGrace: cfg.ShutdownGrace,
			LogAttrs:      []any{"subscriber", cfg.SubscriberAddr, "sender", cfg.SenderAddr},
			Setup:         func(ctx context.Context, s *service.Server) error { return setup(ctx, s, cfg) },
		}
	})
}

// setup wires the digest service, its peers, its gRPC API and the
// scheduler onto s.
func setup(_ context.Context, s *service.Server, cfg config.Config) error {
	catalogue := ranking.DefaultCatalogue()
	if cfg.TopicsFile != "" {
		data, err := os.ReadFile(cfg.TopicsFile)
		if err != nil {
			return fmt.Errorf("DIGEST_TOPICS_FILE: %w", err)
		}
		if catalogue, err = ranking.ParseCatalogue(data); err != nil {
			return fmt.Errorf("DIGEST_TOPICS_FILE %s: %w", cfg.TopicsFile, err)
		}
	}
	subConn, err := grpcclient.New(cfg.SubscriberAddr, cfg.ServiceToken, s.PeerOptions()...)
	if err != nil {
		return fmt.Errorf("subscriber client: %w", err)
	}
	s.OnClose("subscriber client", subConn.Close)
	sendConn, err := grpcclient.New(cfg.SenderAddr, cfg.ServiceToken, s.PeerOptions()...)
	if err != nil {
		return fmt.Errorf("sender client: %w", err)
	}
	s.OnClose("sender client", sendConn.Close)

	renderer, err := render.New(cfg.PostalAddress, render.WithArchiveURL(cfg.PublicURL))
	if err != nil {
		return err
	}
	subscribers := peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(subConn))
	store := redisstore.New(s.Redis)
	runMetrics, err := metrics.NewRuns(s.Metrics)
	if err != nil {
		return fmt.Errorf("run metrics: %w", err)
	}
	schedMetrics, err := metrics.NewScheduler(s.Metrics, store, s.Logger)
	if err != nil {
		return fmt.Errorf("scheduler metrics: %w", err)
	}
	svc, err := digest.New(digest.Config{
		Metrics:          runMetrics,
		Papers:           store,
		Runs:             store,
		Subscribers:      subscribers,
		Preferences:      subscribers,
		Sender:           peers.NewSender(senderv1.NewSenderServiceClient(sendConn)),
		Renderer:         renderer,
		Sent:             store,
		Catalogue:        catalogue,
		Ranking:          rankingParams(cfg),
		WeeklyWindow:     cfg.WeeklyWindow,
		SentMemory:       cfg.SentMemory,
		Logger:           s.Logger,
		PapersPerEdition: cfg.PapersPerEdition,
		Tracer:           runtrace.New(s.TracerProvider),
	})
	if err != nil {
		return err
	}
	papers, err := library.New(library.Config{Store: store, MaxImportBytes: cfg.MaxImportBytes, Metrics: runMetrics})
	if err != nil {
		return err
	}
	digestv1.RegisterDigestServiceServer(s.GRPC, grpcapi.NewServer(svc, papers, s.Authorizer.IsOperator))
	if err := setupSite(s, cfg, svc); err != nil {
		return err
	}
	sched, err := digest.NewScheduler(svc, schedMetrics.Store(store), cfg.SchedulerTick)
	if err != nil {
		return err
	}
	if cfg.Scheduler {
		s.Go("scheduler", sched.Run)
	}
	if err := startPoller(s, cfg, papers, store); err != nil {
		return err
	}
	s.Go("digest runs", func(ctx context.Context) error {
		// Runs stop when the service does: each in-flight run is marked
		// FAILED "interrupted by shutdown; run it again".
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
		defer cancel()
		return svc.Shutdown(shutdownCtx)
	})
	return nil
}

// rankingParams are the published trending parameters with the configured
// daily window.
func rankingParams(cfg config.Config) ranking.Params {
	p := ranking.DefaultParams()
	p.Window = cfg.TrendingWindow
	return p
}

// startPoller runs the source poller when DIGEST_SOURCES names any.
func startPoller(s *service.Server, cfg config.Config, papers *library.Service, lease poller.Lease) error {
	sources, err := poller.ParseSources(cfg.Sources)
	if err != nil || len(sources) == 0 {
		return err // Validate has checked the list; empty means off
	}
	m, err := metrics.NewPoller(s.Metrics)
	if err != nil {
		return fmt.Errorf("poller metrics: %w", err)
	}
	p, err := poller.New(poller.Config{
		Sources: sources, Days: cfg.PollDays, Interval: cfg.PollInterval, Timeout: cfg.PollTimeout,
		MaxBodyBytes: cfg.MaxImportBytes, Importer: papers, Lease: lease, Clock: poller.SystemClock{},
		Metrics: m, Logger: s.Logger.With("component", "poller"),
		UserAgent: "paperroute-digest/1 (source poller)",
	})
	if err != nil {
		return err
	}
	s.Go("source poller", p.Run)
	return nil
}
