package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
)

// IsOperator reports whether the call in ctx carries the admin token. A
// PUBLIC method whose request may name something only operators may see
// (digest's PreviewDigest by subscriber id) asks it in its handler.
func (a *Authorizer) IsOperator(ctx context.Context) bool {
	token, err := grpcauth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1
}
