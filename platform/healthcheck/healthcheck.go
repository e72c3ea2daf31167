// Package healthcheck is the probe a container runtime runs inside a
// paperroute image, where there is no shell, curl or grpcurl: it asks a
// service's grpc.health.v1 Health/Check or GETs its /healthz, and reports
// success through its exit status.
package healthcheck

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Check probes one target within ctx. A target is
//
//	grpc://host:port[/service]   grpc.health.v1 Check must answer SERVING
//	                             (service name empty: the whole server)
//	http://host:port/path        GET must answer 200
func Check(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("healthcheck: %q is not grpc://host:port or http://host:port/path", target)
	}
	switch u.Scheme {
	case "grpc":
		return checkGRPC(ctx, u.Host, strings.TrimPrefix(u.Path, "/"))
	case "http":
		return checkHTTP(ctx, target)
	default:
		return fmt.Errorf("healthcheck: %q: scheme must be grpc or http", target)
	}
}

func checkGRPC(ctx context.Context, addr, service string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("healthcheck: grpc %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("healthcheck: grpc %s: %w", addr, err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("healthcheck: grpc %s: status %s", addr, st)
	}
	return nil
}

func checkHTTP(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", target, resp.Status)
	}
	return nil
}

// Main is the probe command: it checks every target given as an argument
// and returns the process exit status, 0 when all are healthy.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long all checks together may take")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] grpc://host:port[/service] | http://host:port/path ...")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var errs []error
	for _, target := range fs.Args() {
		errs = append(errs, Check(ctx, target))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
