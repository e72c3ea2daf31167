package grpcapi

import (
	"google.golang.org/grpc/codes"

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
	{Err: subscription.ErrMailUnavailable, Code: codes.Unavailable, Message: "the mail could not be sent right now; please try again shortly"},
}
