package grpcapi

import (
	"google.golang.org/grpc/codes"

	"github.com/paperroute/paperroute/platform/grpcerr"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
)

// errorTable maps the digest domain's errors to gRPC codes: the service's
// one table. Validation errors become InvalidArgument with field
// violations, and anything not listed becomes Internal with no detail (see
// grpcerr.Table.Status).
var errorTable = grpcerr.Table{
	{Err: digest.ErrNotFound, Code: codes.NotFound, Message: "digest run not found"},
	{Err: library.ErrNotFound, Code: codes.NotFound, Message: "paper not found"},
	{Err: digest.ErrShuttingDown, Code: codes.Unavailable, Message: "the digest service is shutting down; try again"},
	{Err: digest.ErrSubscriberNotFound, Code: codes.NotFound, Message: "subscriber not found"},
	{Err: digest.ErrNothingToPreview, Code: codes.FailedPrecondition, Message: "nothing to preview: no papers in the recent window, or (for a subscriber) all of them already sent"},
}
