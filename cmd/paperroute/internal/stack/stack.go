// Package stack runs the three paperroute services in one process, each on
// its own gRPC and HTTP listener, exactly as they run apart: every call
// between them goes over real gRPC on loopback.
package stack

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/services/digest/digestd"
	"github.com/paperroute/paperroute/services/sender/senderd"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

// Addrs are the bound addresses of the three services.
type Addrs struct {
	SubscriberGRPC, SubscriberHTTP string
	DigestGRPC, DigestHTTP         string
	SenderGRPC, SenderHTTP         string
}

// Stack is the three services with their listeners bound but not yet
// serving.
type Stack struct {
	addrs  Addrs
	getenv func(string) string
	lis    map[string]net.Listener
	tp     trace.TracerProvider
}

// Listen binds the six listeners at the addresses getenv names (defaults as
// above; port 0 picks a free port) and returns a Stack whose environment
// points every service at the others' actual addresses. When
// SUBSCRIBER_PUBLIC_URL is unset, links point at the subscriber's HTTP
// listener; when DIGEST_PUBLIC_URL is unset, the front page is on the
// digest's HTTP listener; when SUBSCRIBER_ALLOWED_ORIGINS is unset, the
// subscriber takes browser calls from the front page's origin.
func Listen(getenv func(string) string) (*Stack, error) {
	s := &Stack{lis: map[string]net.Listener{}}
	bound := map[string]string{}
	for _, name := range []string{"SUBSCRIBER_GRPC_ADDR", "SUBSCRIBER_HTTP_ADDR", "DIGEST_GRPC_ADDR", "DIGEST_HTTP_ADDR", "SENDER_GRPC_ADDR", "SENDER_HTTP_ADDR"} {
		addr := cmp.Or(getenv(name), envload.DefaultAddr(name))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("stack: listen on %s=%s: %w", name, addr, err)
		}
		s.lis[name] = l
		bound[name] = l.Addr().String()
	}
	if getenv("SUBSCRIBER_PUBLIC_URL") == "" {
		bound["SUBSCRIBER_PUBLIC_URL"] = "http://" + bound["SUBSCRIBER_HTTP_ADDR"]
	}
	// The front page is served by the digest and calls the subscriber from
	// the browser: unless configured, it is reached on the digest's HTTP
	// listener, and the subscriber accepts browser calls from there.
	digestURL := getenv("DIGEST_PUBLIC_URL")
	if digestURL == "" {
		digestURL = "http://" + bound["DIGEST_HTTP_ADDR"]
		bound["DIGEST_PUBLIC_URL"] = digestURL
	}
	if getenv("SUBSCRIBER_ALLOWED_ORIGINS") == "" {
		if u, err := url.Parse(digestURL); err == nil && u.Host != "" {
			origins := u.Scheme + "://" + u.Host
			if u.Hostname() == "127.0.0.1" {
				// The same page opened as localhost is another origin.
				origins += "," + u.Scheme + "://localhost:" + u.Port()
			}
			bound["SUBSCRIBER_ALLOWED_ORIGINS"] = origins
		}
	}
	s.getenv = envload.MapGetenv(bound, getenv)
	s.addrs = Addrs{
		SubscriberGRPC: bound["SUBSCRIBER_GRPC_ADDR"], SubscriberHTTP: bound["SUBSCRIBER_HTTP_ADDR"],
		DigestGRPC: bound["DIGEST_GRPC_ADDR"], DigestHTTP: bound["DIGEST_HTTP_ADDR"],
		SenderGRPC: bound["SENDER_GRPC_ADDR"], SenderHTTP: bound["SENDER_HTTP_ADDR"],
	}
	return s, nil
}

// Addrs returns the bound addresses.
func (s *Stack) Addrs() Addrs { return s.addrs }

// Getenv is the environment the services run with: the caller's, with the
// bound addresses filled in.
func (s *Stack) Getenv(key string) string { return s.getenv(key) }

// TraceWith makes all three services trace with tp, instead of each
// setting up its own from OTEL_EXPORTER_OTLP_ENDPOINT (tests share one
// in-memory exporter). Call it before Run; the caller shuts tp down.
func (s *Stack) TraceWith(tp trace.TracerProvider) { s.tp = tp }

// Run serves all three services until ctx is done or one of them fails; then
// it stops the others and returns the first error (nil after a clean
// shutdown).
func (s *Stack) Run(ctx context.Context, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := senderd.Run(ctx, s.getenv, senderd.Deps{
			Logger: log.With("service", "sender"), GRPCListener: s.lis["SENDER_GRPC_ADDR"], HTTPListener: s.lis["SENDER_HTTP_ADDR"],
			TracerProvider: s.tp,
		})
		return wrap("sender", err)
	})
	g.Go(func() error {
		err := subscriberd.Run(ctx, s.getenv, subscriberd.Deps{
			Logger: log.With("service", "subscriber"), GRPCListener: s.lis["SUBSCRIBER_GRPC_ADDR"], HTTPListener: s.lis["SUBSCRIBER_HTTP_ADDR"],
			TracerProvider: s.tp,
		})
		return wrap("subscriber", err)
	})
	g.Go(func() error {
		err := digestd.Run(ctx, s.getenv, digestd.Deps{
			Logger: log.With("service", "digest"), GRPCListener: s.lis["DIGEST_GRPC_ADDR"], HTTPListener: s.lis["DIGEST_HTTP_ADDR"],
			TracerProvider: s.tp,
		})
		return wrap("digest", err)
	})
	return g.Wait()
}

// Close releases the listeners of a Stack that will not Run.
func (s *Stack) Close() {
	for _, l := range s.lis {
		_ = l.Close()
	}
}

func wrap(service string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", service, err)
}
