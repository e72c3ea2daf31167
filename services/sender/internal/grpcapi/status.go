package grpcapi

import (
	"google.golang.org/grpc/codes"

	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// errorTable maps sender's domain errors to gRPC codes. Validation errors
// become InvalidArgument with field violations and anything unlisted
// (queue.ErrKeyCollision, Redis failures) Internal, by grpcerr itself.
var errorTable = grpcerr.Table{
	{Err: queue.ErrNotFound, Code: codes.NotFound, Message: "message not found"},
}
