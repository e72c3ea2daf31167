package grpcapi

import (
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// errorTable is the service's one mapping from domain errors to gRPC
// status. Validation errors (InvalidArgument with field violations) and
// context errors are handled by grpcerr itself; anything else is Internal.
var errorTable = grpcerr.Table{
	{Err: subscription.ErrNotFound, Code: codes.NotFound, Message: "subscriber not found"},
	// An expired confirmation link is not a malformed request: the
	// token was genuine, the system is just no longer in a state to
	// accept it. FailedPrecondition tells a frontend to offer a new
	// sign-up rather than to fix the request.
	{Err: subscription.ErrLinkExpired, Code: codes.FailedPrecondition, Message: "the confirmation link has expired; subscribe again to get a new one"},
	{Err: subscription.ErrRateLimited, Code: codes.ResourceExhausted, Message: "too many requests; please try again later"},
	{Err: subscription.ErrMailUnavailable, Code: codes.Unavailable, Message: "the mail could not be sent right now; please try again shortly"},
}

// toStatus is errorTable.Status, plus google.rpc.RetryInfo on
// ResourceExhausted so clients know when to come back.
func toStatus(err error) error {
	var lerr *subscription.LimitError
	if errors.As(err, &lerr) {
		st := status.New(codes.ResourceExhausted, "too many requests; please try again later")
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(lerr.RetryAfter.Round(time.Second) + time.Second)}); derr == nil {
			st = d
		}
		return &limitStatus{st: st, cause: err}
	}
	return errorTable.Status(err)
}

// limitStatus is a status error that keeps its cause for the logs.
type limitStatus struct {
	st    *status.Status
	cause error
}

func (e *limitStatus) Error() string              { return e.st.Code().String() + ": " + e.cause.Error() }
func (e *limitStatus) GRPCStatus() *status.Status { return e.st }
func (e *limitStatus) Unwrap() error              { return e.cause }
