// Package grpcclient opens the connections paperroute services use to call
// each other: the service token on every call, keepalive, and retries of
// UNAVAILABLE for the (idempotent) internal RPCs, and, with a tracer
// provider, the caller's trace context on every call.
package grpcclient

import (
	"crypto/tls"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/tracing"
)

// retryPolicy retries calls that failed before reaching the server. Every
// internal RPC is idempotent (Enqueue by idempotency key, PutContent by
// content address, the rest read-only), so a retry cannot double anything.
const retryPolicy = `{
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Option changes how New connects.
type Option func(*options)

type options struct {
	tls *tls.Config
	tp  trace.TracerProvider
}

// WithTLS makes the connection use TLS with cfg (see platform/tlsconfig's
// GRPCClient); a nil cfg keeps it plaintext. The server name is the host
// of addr unless cfg sets one.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithTracerProvider traces every call with tp (otelgrpc stats handler) and
// sends the W3C trace context to the server; nil, the default, means no
// tracing.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// New returns a lazily connecting client for addr (host:port) that presents
// token as a bearer token. Without WithTLS the connection is plaintext: run
// services on loopback or a private network, or turn TLS on
// (docs/configuration.md, PAPERROUTE_GRPC_TLS_*).
func New(addr, token string, opts ...Option) (*grpc.ClientConn, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	transport := insecure.NewCredentials()
	if o.tls != nil {
		transport = credentials.NewTLS(o.tls)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token, AllowInsecure: o.tls == nil}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(retryPolicy),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20)),
	}
	if o.tp != nil {
		dialOpts = append(dialOpts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(o.tp),
			otelgrpc.WithPropagators(tracing.Propagator()),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		)))
	}
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: %s: %w", addr, err)
	}
	return conn, nil
}
