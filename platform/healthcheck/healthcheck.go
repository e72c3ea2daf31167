// Package healthcheck is the probe a container runtime runs inside a
// paperroute image, where there is no shell, curl or grpcurl: it asks a
// service's grpc.health.v1 Health/Check or GETs its /healthz, and reports
// success through its exit status.
//
// The probe runs in the service's own container with the service's
// environment: when PAPERROUTE_GRPC_TLS_CERT is set (the service serves
// TLS), it speaks TLS and presents that certificate, so it also passes a
// server that requires mutual TLS. It checks the server's chain against
// PAPERROUTE_GRPC_TLS_CA when that is set, but not the host name: it
// probes its own process on loopback, whose certificate names the
// service, not 127.0.0.1.
package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/paperroute/paperroute/platform/tlsconfig"
)

// Check probes one target within ctx. A target is
//
//	grpc://host:port[/service]   grpc.health.v1 Check must answer SERVING
//	                             (service name empty: the whole server)
//	http://host:port/path        GET must answer 200
//
// tlsCfg, when not nil, is used for grpc:// targets (see ProbeTLS).
func Check(ctx context.Context, target string, tlsCfg *tls.Config) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("healthcheck: %q is not grpc://host:port or http://host:port/path", target)
	}
	switch u.Scheme {
	case "grpc":
		return checkGRPC(ctx, u.Host, strings.TrimPrefix(u.Path, "/"), tlsCfg)
	case "http":
		return checkHTTP(ctx, target)
	default:
		return fmt.Errorf("healthcheck: %q: scheme must be grpc or http", target)
	}
}

func checkGRPC(ctx context.Context, addr, service string, tlsCfg *tls.Config) error {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
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

// ProbeTLS returns the TLS the probe speaks to the service whose
// environment getenv reads, or nil when the service serves plaintext.
func ProbeTLS(ctx context.Context, getenv func(string) string) (*tls.Config, error) {
	env, err := tlsconfig.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	if env.GRPCCert == "" {
		return nil, nil
	}
	own, err := tls.LoadX509KeyPair(env.GRPCCert, env.GRPCKey)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: %w", err)
	}
	var roots *x509.CertPool
	if env.GRPCCA != "" {
		client, err := env.GRPCClient()
		if err != nil {
			return nil, err
		}
		roots = client.RootCAs
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{own},
		// The host name cannot match (loopback); the chain is verified
		// below when a CA is configured.
		InsecureSkipVerify: true, //nolint:gosec // see the package comment
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if roots == nil {
				return nil
			}
			certs := make([]*x509.Certificate, 0, len(raw))
			for _, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			}
			if len(certs) == 0 {
				return errors.New("healthcheck: server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		},
	}, nil
}

// Main is the probe command: it checks every target given as an argument
// and returns the process exit status, 0 when all are healthy.
func Main(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
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
	tlsCfg, err := ProbeTLS(ctx, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var errs []error
	for _, target := range fs.Args() {
		errs = append(errs, Check(ctx, target, tlsCfg))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
