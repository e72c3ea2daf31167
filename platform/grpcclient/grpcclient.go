// Package grpcclient opens the connections paperroute services use to call
// each other: the service token on every call, keepalive, and retries of
// UNAVAILABLE for the (idempotent) internal RPCs.
package grpcclient

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/paperroute/paperroute/platform/auth"
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

// New returns a lazily connecting client for addr (host:port) that presents
// token as a bearer token. The connection is plaintext: run services on
// loopback or a private network (TLS between services is future work, see
// docs/architecture.md).
func New(addr, token string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token, AllowInsecure: true}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(retryPolicy),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: %s: %w", addr, err)
	}
	return conn, nil
}
