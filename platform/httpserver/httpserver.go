// Package httpserver runs a service's HTTP side: /healthz, /metrics and, for
// the subscriber service, the link pages, with sane timeouts and a graceful
// shutdown.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether a dependency (e.g. Redis) is usable.
type Check func(ctx context.Context) error

// Routes adds /healthz and /metrics to mux. /healthz answers 200 "ok" when
// every check passes within 2 s, else 503 naming nothing internal.
func Routes(mux *http.ServeMux, gatherer prometheus.Gatherer, log *slog.Logger, checks ...Check) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, check := range checks {
			if err := check(ctx); err != nil {
				log.WarnContext(ctx, "health check failed", "err", err)
				http.Error(w, "unhealthy", http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Serve serves h on lis until ctx is done, then shuts down, giving open
// requests grace to finish. If the listener fails first, it closes every
// connection and returns the error.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		// The listener failed; close the connections already accepted, or
		// they would go on being served after Serve has returned.
		_ = srv.Close()
		return fmt.Errorf("httpserver: serve %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpserver: serve %s: %w", lis.Addr(), err)
	}
	return nil
}
