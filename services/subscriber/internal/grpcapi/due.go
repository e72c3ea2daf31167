package grpcapi

import (
	"context"
	"time"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// ListDueSubscribers implements subscriberv1.SubscriberServiceServer.
func (s *Server) ListDueSubscribers(ctx context.Context, req *subscriberv1.ListDueSubscribersRequest) (*subscriberv1.ListDueSubscribersResponse, error) {
	var due time.Time
	if req.DueTime != nil {
		if err := req.GetDueTime().CheckValid(); err != nil {
			return nil, errorTable.Status(validation.Field("due_time", "is not a valid timestamp"))
		}
		due = req.GetDueTime().AsTime()
	}
	res, err := s.svc.ListDue(ctx, subscription.ListDueRequest{
		DueTime:   due,
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, errorTable.Status(err)
	}
	out := &subscriberv1.ListDueSubscribersResponse{
		Subscribers:   make([]*subscriberv1.DueSubscriber, 0, len(res.Subscribers)),
		NextPageToken: res.NextPageToken,
	}
	for _, d := range res.Subscribers {
		out.Subscribers = append(out.Subscribers, &subscriberv1.DueSubscriber{
			SubscriberId:   d.ID,
			Email:          d.Email,
			UnsubscribeUrl: d.UnsubscribeURL,
			Preferences:    preferencesToProto(d.Preferences),
			ManageUrl:      d.ManageURL,
		})
	}
	return out, nil
}
