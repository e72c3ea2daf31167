// Package peers holds the sender's clients of other paperroute services.
package peers

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// maxDetailBytes is the subscriber service's bound on a report's detail.
const maxDetailBytes = 512

// Subscribers calls the subscriber service. It implements
// delivery.FailureReporter.
type Subscribers struct {
	client subscriberv1.SubscriberServiceClient
}

var _ delivery.FailureReporter = (*Subscribers)(nil)

// NewSubscribers returns a client over conn (authenticated with the
// service token, see platform/grpcclient).
func NewSubscribers(conn grpc.ClientConnInterface) *Subscribers {
	return &Subscribers{client: subscriberv1.NewSubscriberServiceClient(conn)}
}

// RecordDeliveryFailure reports a hard bounce. A refusal that retrying
// cannot change (InvalidArgument, NotFound, FailedPrecondition) wraps
// delivery.ErrReportRefused.
func (s *Subscribers) RecordDeliveryFailure(ctx context.Context, recipient, detail string) error {
	_, err := s.client.RecordDeliveryFailure(ctx, &subscriberv1.RecordDeliveryFailureRequest{
		Email:  recipient,
		Kind:   subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_HARD_BOUNCE,
		Detail: truncate(detail, maxDetailBytes),
	})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition:
		return fmt.Errorf("peers: record delivery failure: %w: %w", delivery.ErrReportRefused, err)
	}
	return fmt.Errorf("peers: record delivery failure: %w", err)
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
