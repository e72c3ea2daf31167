// Command healthcheck probes paperroute services from inside their container
// image, which has no shell or curl (deploy/Dockerfile, deploy/compose.yaml):
//
//	healthcheck grpc://127.0.0.1:50053 http://127.0.0.1:8083/healthz
//
// It exits 0 when every target is healthy, 1 otherwise. It reads the
// service's PAPERROUTE_GRPC_TLS_* variables to speak TLS to a TLS server.
package main

import (
	"context"
	"os"

	"github.com/paperroute/paperroute/platform/healthcheck"
)

func main() {
	os.Exit(healthcheck.Main(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}
