// Package grpcserver builds a service's gRPC server the same way everywhere:
// Prometheus metrics, slog logging, panic recovery and auth interceptors
// (in that order), OpenTelemetry tracing (otelgrpc stats handler), keepalive and message-size limits, grpc.health.v1 health,
// server reflection, and a graceful stop with a deadline.
package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/tracing"
)

// Config is what a gRPC server needs.
type Config struct {
	// Logger receives one line per finished call (health checks excepted)
	// and every recovered panic. Required.
	Logger *slog.Logger
	// Registerer receives the gRPC server metrics. Required.
	Registerer prometheus.Registerer
	// Authorizer enforces the service's method policy. Required.
	Authorizer *auth.Authorizer
	// MaxRecvBytes bounds a request message; 0 means 4 MiB.
	MaxRecvBytes int
	// ShutdownGrace is how long in-flight calls get to finish on shutdown
	// before they are cut off; 0 means 10s.
	ShutdownGrace time.Duration
	// TLS, when set, makes the server speak TLS only (see
	// platform/tlsconfig); nil serves plaintext.
	TLS *tls.Config
	// TracerProvider, when set, traces every call (otelgrpc stats handler,
	// W3C trace context from the caller's metadata; see platform/tracing);
	// nil means no tracing.
	TracerProvider trace.TracerProvider
}

// Server is a gRPC server with its health service.
type Server struct {
	// GRPC is where the service registers its implementation.
	GRPC *grpc.Server
	// Health is the grpc.health.v1 server; Serve sets it SERVING and
	// shutdown sets it NOT_SERVING.
	Health *health.Server

	log     *slog.Logger
	metrics *grpcprom.ServerMetrics
	// initMetrics makes InitializeMetrics run once.
	initMetrics sync.Once
	grace       time.Duration
}

// New builds the server. Register services on s.GRPC before calling Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil || cfg.Registerer == nil || cfg.Authorizer == nil {
		return nil, errors.New("grpcserver: Logger, Registerer and Authorizer are required")
	}
	if cfg.MaxRecvBytes == 0 {
		cfg.MaxRecvBytes = 4 << 20
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	srvMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	if err := cfg.Registerer.Register(srvMetrics); err != nil {
		return nil, fmt.Errorf("grpcserver: register metrics: %w", err)
	}
	logger := cfg.Logger
	logCalls := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		logger.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return !strings.HasPrefix(c.FullMethod(), "/grpc.health.v1.")
	})
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in gRPC handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})

	var opts []grpc.ServerOption
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	if cfg.TracerProvider != nil {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(cfg.TracerProvider),
			otelgrpc.WithPropagators(tracing.Propagator()),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
			// Probes every few seconds would drown the traces.
			otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
		)))
	}
	s := grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(cfg.MaxRecvBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 15 * time.Minute,
			Time:              1 * time.Minute,
			Timeout:           20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.ChainUnaryInterceptor(
			srvMetrics.UnaryServerInterceptor(),
			selector.UnaryServerInterceptor(logging.UnaryServerInterceptor(logCalls, logOpts...), notHealth),
			recovery.UnaryServerInterceptor(recoverOpt),
			cfg.Authorizer.UnaryServerInterceptor(),
		),
		grpc.ChainStreamInterceptor(
			srvMetrics.StreamServerInterceptor(),
			selector.StreamServerInterceptor(logging.StreamServerInterceptor(logCalls, logOpts...), notHealth),
			recovery.StreamServerInterceptor(recoverOpt),
			cfg.Authorizer.StreamServerInterceptor(),
		),
	)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return &Server{GRPC: s, Health: hs, log: logger, metrics: srvMetrics, grace: cfg.ShutdownGrace}, nil
}

// InitializeMetrics creates the per-method series of every registered
// service at zero, so /metrics shows them before the first call. Call it
// after registering the services; Serve calls it too (once is enough).
func (s *Server) InitializeMetrics() {
	s.initMetrics.Do(func() { s.metrics.InitializeMetrics(s.GRPC) })
}

// Serve serves on lis until ctx is done, then shuts down gracefully: health
// goes NOT_SERVING, new calls are refused, in-flight calls get ShutdownGrace
// to finish, and whatever is left is cut off. It returns nil after a clean
// shutdown. If the listener fails first, it stops the server at once and
// returns the error.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.InitializeMetrics()
	for name := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(lis) }()

	select {
	case err := <-errc:
		// The listener failed. grpc.Server.Serve returns then but keeps
		// serving the connections it accepted: stop those too, so nothing
		// runs on after Serve has returned.
		s.Health.Shutdown()
		s.GRPC.Stop()
		return fmt.Errorf("grpcserver: serve %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	s.Health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("grpc graceful stop timed out; cutting off remaining calls", "grace", s.grace)
		s.GRPC.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpcserver: serve %s: %w", lis.Addr(), err)
	}
	return nil
}
