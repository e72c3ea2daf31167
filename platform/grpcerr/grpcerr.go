// Package grpcerr turns domain errors into gRPC status errors through a table
// each service declares once (its grpcapi/status.go), so codes are decided in
// one place and internal details never reach a caller.
package grpcerr

import (
	"context"
	"errors"
	"net"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paperroute/paperroute/platform/validation"
)

// Rule maps every error that errors.Is Err to Code with the public Message.
// An empty Message uses the error's own text: only do that for errors whose
// text is written for callers.
type Rule struct {
	Err     error
	Code    codes.Code
	Message string
}

// Table is a service's complete mapping from domain errors to gRPC codes.
type Table []Rule

// Status converts err to a gRPC status error:
//   - nil stays nil; an error that is itself a status (not one that merely
//     wraps a status, such as a downstream service's error wrapped with %w,
//     whose message is not for this service's callers) keeps it;
//   - a *validation.Error becomes InvalidArgument with BadRequest details;
//   - the first matching Rule decides the code and message;
//   - context cancellation and deadlines become Canceled and DeadlineExceeded;
//   - a network failure reaching a dependency (Redis, another service)
//     becomes Unavailable, which tells callers to retry (every paperroute
//     write is idempotent);
//   - anything else becomes Internal with the message "internal error".
//
// The returned error wraps err, so the logging interceptor records the real
// cause while the caller sees only the public status.
func (t Table) Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var verr *validation.Error
	if errors.As(err, &verr) {
		return &statusError{st: InvalidArgument(verr), cause: err}
	}
	for _, r := range t {
		if errors.Is(err, r.Err) {
			msg := r.Message
			if msg == "" {
				msg = r.Err.Error()
			}
			return &statusError{st: status.New(r.Code, msg), cause: err}
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &statusError{st: status.New(codes.Canceled, "request canceled"), cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &statusError{st: status.New(codes.DeadlineExceeded, "deadline exceeded"), cause: err}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return &statusError{st: status.New(codes.Unavailable, "temporarily unavailable; retry with backoff"), cause: err}
	}
	return &statusError{st: status.New(codes.Internal, "internal error"), cause: err}
}

// InvalidArgument builds the InvalidArgument status for a validation error,
// with one google.rpc.BadRequest field violation per problem (AIP-193).
func InvalidArgument(verr *validation.Error) *status.Status {
	st := status.New(codes.InvalidArgument, verr.Error())
	br := &errdetails.BadRequest{}
	for _, v := range verr.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.Field,
			Description: v.Description,
		})
	}
	if withDetails, err := st.WithDetails(br); err == nil {
		return withDetails
	}
	return st
}

// FieldViolations extracts the BadRequest field violations from a status
// error, keyed by field. It is what a client (or a test) checks.
func FieldViolations(err error) map[string]string {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}

// statusError carries a public status and the private cause.
type statusError struct {
	st    *status.Status
	cause error
}

// Error is what logs see: the code and the real cause.
func (e *statusError) Error() string {
	return e.st.Code().String() + ": " + e.cause.Error()
}

// GRPCStatus is what the caller sees.
func (e *statusError) GRPCStatus() *status.Status { return e.st }

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *statusError) Unwrap() error { return e.cause }
