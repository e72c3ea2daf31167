// Package service runs a paperroute service the same way for all three:
// open Redis, build the authorizer and the gRPC server (health, reflection,
// interceptors), let the service wire itself, serve gRPC and HTTP on their
// listeners beside the service's background workers, and stop gracefully
// when the context is done. Each service's <svc>d package only says what is
// particular to it, in a Spec.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/browserrpc"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/httpserver"
	"github.com/paperroute/paperroute/platform/listener"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/platform/redisclient"
	"github.com/paperroute/paperroute/platform/tlsconfig"
	"github.com/paperroute/paperroute/platform/tracing"
)

// Deps are what the caller of a service provides; everything else comes
// from the service's configuration.
type Deps struct {
	// Logger is required.
	Logger *slog.Logger
	// GRPCListener and HTTPListener, when set, are used instead of listening
	// on the configured addresses (tests and the all-in-one binary bind them
	// first, so the services can find each other). Run owns them from then
	// on and closes them when it returns, also when it fails to start.
	GRPCListener net.Listener
	HTTPListener net.Listener
	// TracerProvider, when set, is used instead of the one RunFromEnv sets
	// up from OTEL_EXPORTER_OTLP_ENDPOINT (tests bring an in-memory one);
	// the caller shuts it down.
	TracerProvider trace.TracerProvider
}

// Spec is what is particular to one service.
type Spec struct {
	// Name names the service in logs and errors ("sender").
	Name string
	// GRPCAddr and HTTPAddr are where to listen when Deps brings no listener.
	GRPCAddr, HTTPAddr string
	// RedisURL is the service's Redis (see platform/redisclient).
	RedisURL string
	// Policy is the auth class of every RPC; Tokens the accepted bearer
	// tokens.
	Policy auth.Policy
	Tokens auth.Tokens
	// MaxRecvBytes bounds one gRPC request; 0 means 4 MiB.
	MaxRecvBytes int
	// ShutdownGrace is how long in-flight calls and requests get to finish
	// on shutdown.
	ShutdownGrace time.Duration
	// Browser says from where browsers may call the service's PUBLIC and
	// TOKEN RPCs over Connect and gRPC-Web on the HTTP port (see
	// platform/browserrpc). Its Expose defaults to the methods Policy opens
	// to the public.
	Browser browserrpc.Config
	// TLS is the service's TLS settings (platform/tlsconfig.Load): the gRPC
	// server's certificate and mutual TLS, Server.PeerTLS for calls to the
	// other services, and rediss:// roots and client certificate. The zero
	// value is plaintext gRPC and whatever RedisURL says.
	TLS tlsconfig.Env
	// TracerProvider traces the service's gRPC calls, served and made
	// (platform/tracing); nil means no tracing. RunFromEnv sets it from
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	TracerProvider trace.TracerProvider
	// LogAttrs are added to the "serving" log line (never secrets).
	LogAttrs []any
	// Setup wires the service onto s: it registers the gRPC implementation
	// on s.GRPC, adds routes to s.Mux and starts background workers with
	// s.Go. An error stops the start-up; whatever Setup registered with
	// s.OnClose is still closed.
	Setup func(ctx context.Context, s *Server) error
}

// Server is what a service's Setup wires itself onto.
type Server struct {
	// Logger is the service's logger.
	Logger *slog.Logger
	// Redis is the opened and pinged Redis client; Run closes it.
	Redis redis.UniversalClient
	// Metrics is the service's Prometheus registry, served on /metrics.
	Metrics *prometheus.Registry
	// GRPC is where the service registers its implementation.
	GRPC *grpc.Server
	// Mux is the HTTP side; /healthz and /metrics are already on it.
	Mux *http.ServeMux
	// Authorizer enforces Spec.Policy; handlers whose answer depends on
	// the caller's class (an operator sees more) ask it.
	Authorizer *auth.Authorizer
	// ClientIP is the address of the caller of an HTTP request, believing
	// the trusted proxies of Spec.Browser (browserrpc.Config.ClientIP), for
	// the service's own pages.
	ClientIP func(*http.Request) netip.Addr
	// PeerTLS is the TLS for calls to the other services
	// (grpcclient.WithTLS(s.PeerTLS)); nil means plaintext.
	PeerTLS *tls.Config
	// TracerProvider is Spec.TracerProvider, or a no-op one: for the
	// service's own spans (never nil).
	TracerProvider trace.TracerProvider

	tracing trace.TracerProvider // Spec.TracerProvider, nil when off
	wrap    func(http.Handler) http.Handler
	workers []worker
	closers []closer
}

type worker struct {
	name string
	fn   func(ctx context.Context) error
}

type closer struct {
	name string
	fn   func() error
}

// PeerOptions are the grpcclient options for calls to the other services:
// PeerTLS and, when the service traces, the trace context on every call.
func (s *Server) PeerOptions() []grpcclient.Option {
	return []grpcclient.Option{grpcclient.WithTLS(s.PeerTLS), grpcclient.WithTracerProvider(s.tracing)}
}

// Go runs fn beside the servers. fn must return when ctx is done (nil for
// a clean stop); an error from it stops the whole service.
func (s *Server) Go(name string, fn func(ctx context.Context) error) {
	s.workers = append(s.workers, worker{name: name, fn: fn})
}

// OnClose registers fn to run after the servers and workers have stopped,
// in reverse order of registration (connections to peer services, say).
func (s *Server) OnClose(name string, fn func() error) {
	s.closers = append(s.closers, closer{name: name, fn: fn})
}

// WrapHTTP puts middleware around the whole HTTP side (security headers,
// say). Later calls wrap earlier ones.
func (s *Server) WrapHTTP(mw func(http.Handler) http.Handler) {
	prev := s.wrap
	s.wrap = func(h http.Handler) http.Handler { return mw(prev(h)) }
}

// stopping reports whether err is only ctx ending: a stop asked for, not a
// failure.
func stopping(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// Run runs the service described by spec until ctx is done, then shuts down
// gracefully (health NOT_SERVING, in-flight calls get ShutdownGrace,
// workers see ctx done) and returns nil. A bad spec, an unreachable Redis or
// a failing Setup is an error returned at once; ctx ending while Setup runs
// is a clean stop (nil).
func Run(ctx context.Context, deps Deps, spec Spec) (err error) {
	defer listener.Close(deps.GRPCListener, deps.HTTPListener)
	if spec.Name == "" || spec.Setup == nil {
		return errors.New("service: Spec.Name and Spec.Setup are required")
	}
	if deps.Logger == nil {
		return fmt.Errorf("%s: Deps.Logger is required", spec.Name)
	}
	log := deps.Logger
	fail := func(err error) error { return fmt.Errorf("%s: %w", spec.Name, err) }

	serverTLS, err := spec.TLS.GRPCServer()
	if err != nil {
		return fail(err)
	}
	peerTLS, err := spec.TLS.GRPCClient()
	if err != nil {
		return fail(err)
	}
	redisTLS, err := spec.TLS.Redis()
	if err != nil {
		return fail(err)
	}
	rdb, err := redisclient.Open(ctx, spec.RedisURL, redisclient.WithTLS(redisTLS))
	if err != nil {
		return fail(err)
	}
	s := &Server{Logger: log, Redis: rdb, Metrics: metrics.NewRegistry(), Mux: http.NewServeMux(), PeerTLS: peerTLS,
		ClientIP: spec.Browser.ClientIP, wrap: func(h http.Handler) http.Handler { return h },
		TracerProvider: spec.TracerProvider, tracing: spec.TracerProvider}
	if s.TracerProvider == nil {
		s.TracerProvider = noop.NewTracerProvider()
	}
	s.OnClose("redis", rdb.Close)
	defer s.close()

	authz, err := auth.NewAuthorizer(spec.Policy, spec.Tokens)
	if err != nil {
		return fail(err)
	}
	gsrv, err := grpcserver.New(grpcserver.Config{
		Logger:         log,
		Registerer:     s.Metrics,
		Authorizer:     authz,
		MaxRecvBytes:   spec.MaxRecvBytes,
		ShutdownGrace:  spec.ShutdownGrace,
		TLS:            serverTLS,
		TracerProvider: spec.TracerProvider,
	})
	if err != nil {
		return fail(err)
	}
	s.GRPC, s.Authorizer = gsrv.GRPC, authz
	httpserver.Routes(s.Mux, s.Metrics, log, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	if err := spec.Setup(ctx, s); err != nil {
		if stopping(ctx, err) {
			// Asked to stop while starting (a SIGTERM right after the
			// start, a test that is already done): a clean stop, not a
			// failure.
			log.Info("stopped during start-up", "service", spec.Name)
			return nil
		}
		return fail(err)
	}
	if err := mountBrowser(s, spec); err != nil {
		return fail(err)
	}
	// The gRPC series are on /metrics from the first scrape, even one that
	// comes before the gRPC listener is served.
	gsrv.InitializeMetrics()

	grpcLis, err := listener.Open(deps.GRPCListener, spec.GRPCAddr)
	if err != nil {
		return fail(fmt.Errorf("gRPC: %w", err))
	}
	defer listener.Close(grpcLis)
	httpLis, err := listener.Open(deps.HTTPListener, spec.HTTPAddr)
	if err != nil {
		return fail(fmt.Errorf("HTTP: %w", err))
	}
	defer listener.Close(httpLis)
	attrs := append([]any{"grpc", grpcLis.Addr().String(), "grpc_tls", tlsMode(serverTLS), "http", httpLis.Addr().String(),
		"redis", redisclient.Redact(spec.RedisURL)}, spec.LogAttrs...)
	log.InfoContext(ctx, spec.Name+": serving", attrs...)

	grace := spec.ShutdownGrace
	if grace == 0 {
		grace = 10 * time.Second
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gsrv.Serve(gctx, grpcLis) })
	g.Go(func() error { return httpserver.Serve(gctx, httpLis, s.wrap(s.Mux), grace) })
	for _, w := range s.workers {
		g.Go(func() error {
			if err := w.fn(gctx); err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	log.InfoContext(ctx, spec.Name+": stopped")
	return nil
}

// tlsMode names the gRPC server's transport security for the log.
func tlsMode(cfg *tls.Config) string {
	switch {
	case cfg == nil:
		return "off"
	case cfg.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mutual"
	default:
		return "on"
	}
}

// mountBrowser serves the public RPCs to browsers on the HTTP mux, at each
// service's path prefix.
func mountBrowser(s *Server, spec Spec) error {
	cfg := spec.Browser
	if cfg.Expose == nil {
		cfg.Expose = func(method string) bool { return spec.Policy[method]&auth.Public != 0 }
	}
	h, prefixes, err := browserrpc.Handler(s.GRPC, cfg)
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		s.Mux.Handle(p, h)
	}
	return nil
}

// close runs the closers, last registered first, logging failures: by then
// the service has stopped and the caller's result is already decided.
func (s *Server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		c := s.closers[i]
		if err := c.fn(); err != nil {
			s.Logger.Warn("close "+c.name, "err", err)
		}
	}
}

// CloseListeners closes the listeners in deps. A service's Run calls it when
// it fails before handing deps to Run (a bad configuration, say).
func CloseListeners(deps Deps) { listener.Close(deps.GRPCListener, deps.HTTPListener) }

// RunFromEnv is the whole of a service's <svc>d.Run: it loads the service's
// configuration with load, its browser settings (<PREFIX>_ALLOWED_ORIGINS
// and friends, see browserrpc.FromEnv) and the TLS settings every service
// shares (PAPERROUTE_GRPC_TLS_*, REDIS_TLS_*, see tlsconfig.Load), builds
// the Spec with spec, and runs it. A configuration error is returned at once, naming the variable.
// It also sets up tracing once (platform/tracing: on only when
// OTEL_EXPORTER_OTLP_ENDPOINT is set) and flushes and stops it on return.
func RunFromEnv[C any](ctx context.Context, getenv func(string) string, deps Deps, envPrefix string,
	load func(context.Context, func(string) string) (C, error), spec func(C) Spec) error {
	cfg, err := load(ctx, getenv)
	if err == nil {
		var browser browserrpc.Config
		if browser, err = browserrpc.FromEnv(getenv, envPrefix); err == nil {
			var tlsEnv tlsconfig.Env
			if tlsEnv, err = tlsconfig.Load(ctx, getenv); err != nil {
				CloseListeners(deps)
				return fmt.Errorf("%s: %w", strings.ToLower(envPrefix), err)
			}
			s := spec(cfg)
			s.Browser = browser
			s.TLS = tlsEnv
			return runTraced(ctx, getenv, deps, s)
		}
		err = fmt.Errorf("config: %w", err)
	}
	CloseListeners(deps)
	return fmt.Errorf("%s: %w", strings.ToLower(envPrefix), err)
}

// runTraced runs spec with the tracer provider platform/tracing sets up from
// getenv, shutting it down (flushing buffered spans, at most 5s) on return.
func runTraced(ctx context.Context, getenv func(string) string, deps Deps, spec Spec) error {
	if deps.TracerProvider != nil {
		spec.TracerProvider = deps.TracerProvider
		return Run(ctx, deps, spec)
	}
	tp, shutdown, err := tracing.Setup(ctx, getenv, spec.Name)
	if err != nil {
		CloseListeners(deps)
		return fmt.Errorf("%s: %w", spec.Name, err)
	}
	if getenv(tracing.EndpointEnv) != "" {
		spec.TracerProvider = tp
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil && deps.Logger != nil {
			deps.Logger.Warn(spec.Name+": tracing shutdown", "err", err)
		}
	}()
	return Run(ctx, deps, spec)
}
