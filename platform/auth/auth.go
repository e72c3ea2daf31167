// Package auth authorises gRPC calls by the class of the method called.
//
// Every RPC of a service is declared in a Policy as PUBLIC (anyone; the link
// token inside a TOKEN request is checked by the service itself), OPERATOR
// (the admin bearer token) or INTERNAL (the service token other paperroute
// services present). A method missing from the policy is refused, so a new
// RPC cannot be exposed by accident. Health and reflection are always public.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Class is the set of callers allowed to call a method.
type Class uint8

const (
	// Public methods need no credentials. TOKEN methods are Public at this
	// layer: their signed link token is verified by the service.
	Public Class = 1 << iota
	// Operator methods need the admin token.
	Operator
	// Internal methods need the service token.
	Internal
)

// Policy maps full method names ("/paperroute.sender.v1.SenderService/Enqueue")
// to the callers allowed.
type Policy map[string]Class

// Tokens are the bearer tokens the server accepts.
type Tokens struct {
	// Admin is the operator token. Required.
	Admin string
	// Service is the token paperroute services use to call each other.
	// Required.
	Service string
}

// errNoPolicy is returned for methods the policy does not name.
var errNoPolicy = status.Error(codes.PermissionDenied, "method is not open to any caller")

// Authorizer checks calls against a Policy.
type Authorizer struct {
	policy  Policy
	admin   [sha256.Size]byte
	service [sha256.Size]byte
}

// NewAuthorizer returns an Authorizer for policy. Both tokens must be set and
// differ, so an operator token can never pass as a service token or the
// reverse.
func NewAuthorizer(policy Policy, tokens Tokens) (*Authorizer, error) {
	if tokens.Admin == "" || tokens.Service == "" {
		return nil, errors.New("auth: admin and service tokens are both required")
	}
	if tokens.Admin == tokens.Service {
		return nil, errors.New("auth: admin and service tokens must differ")
	}
	return &Authorizer{
		policy:  policy,
		admin:   sha256.Sum256([]byte(tokens.Admin)),
		service: sha256.Sum256([]byte(tokens.Service)),
	}, nil
}

// Authorize decides whether the call in ctx may proceed. It implements the
// go-grpc-middleware auth.AuthFunc shape.
func (a *Authorizer) Authorize(ctx context.Context) (context.Context, error) {
	method, _ := grpc.Method(ctx)
	if alwaysPublic(method) {
		return ctx, nil
	}
	class, ok := a.policy[method]
	if !ok {
		return nil, errNoPolicy
	}
	if class&Public != 0 {
		return ctx, nil
	}
	token, err := grpcauth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "missing bearer token")
	}
	// Compare fixed-length digests so neither content nor length leaks
	// through timing.
	sum := sha256.Sum256([]byte(token))
	isAdmin := subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1
	isService := subtle.ConstantTimeCompare(sum[:], a.service[:]) == 1
	switch {
	case isAdmin && class&Operator != 0, isService && class&Internal != 0:
		return ctx, nil
	case isAdmin || isService:
		return nil, status.Error(codes.PermissionDenied, "this token may not call this method")
	default:
		return nil, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
}

// UnaryServerInterceptor returns the interceptor enforcing the policy.
func (a *Authorizer) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return grpcauth.UnaryServerInterceptor(a.Authorize)
}

// StreamServerInterceptor returns the interceptor enforcing the policy.
func (a *Authorizer) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return grpcauth.StreamServerInterceptor(a.Authorize)
}

func alwaysPublic(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "/grpc.reflection.")
}

// BearerToken is client credentials that send "authorization: Bearer
// <token>" with every call.
type BearerToken struct {
	Token string
	// AllowInsecure permits sending the token over a connection without
	// transport security (loopback and private networks).
	AllowInsecure bool
}

var _ credentials.PerRPCCredentials = BearerToken{}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b BearerToken) RequireTransportSecurity() bool { return !b.AllowInsecure }
