package grpcapi

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// GetSubscriber implements subscriberv1.SubscriberServiceServer. The id
// may be given as id or, as older scripts do, subscriber_id.
func (s *Server) GetSubscriber(ctx context.Context, req *subscriberv1.GetSubscriberRequest) (*subscriberv1.GetSubscriberResponse, error) {
	idField, id := "id", req.GetId()
	switch {
	case id != "" && req.GetSubscriberId() != "":
		return nil, toStatus(validation.Field("subscriber_id", "set id or subscriber_id, not both"))
	case id == "" && req.GetSubscriberId() != "":
		idField, id = "subscriber_id", req.GetSubscriberId()
	}
	sub, err := s.svc.Lookup(ctx, subscription.Ref{ID: id, Email: req.GetEmail()}, idField)
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.GetSubscriberResponse{Subscriber: subscriberToProto(sub)}, nil
}

// ListSubscribers implements subscriberv1.SubscriberServiceServer.
func (s *Server) ListSubscribers(ctx context.Context, req *subscriberv1.ListSubscribersRequest) (*subscriberv1.ListSubscribersResponse, error) {
	res, err := s.svc.List(ctx, subscription.ListRequest{
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
		State:     stateFromProto(req.GetState()),
		Topic:     req.GetTopic(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &subscriberv1.ListSubscribersResponse{NextPageToken: res.NextPageToken}
	for _, sub := range res.Subscribers {
		out.Subscribers = append(out.Subscribers, subscriberToProto(sub))
	}
	return out, nil
}

// exportDocument is the GDPR export: the subscriber as the API shows it,
// plus when and by whom the export was made.
type exportDocument struct {
	Kind       string          `json:"kind"`
	ExportTime time.Time       `json:"export_time"`
	Subscriber json.RawMessage `json:"subscriber"`
}

// ExportSubscriber implements subscriberv1.SubscriberServiceServer.
func (s *Server) ExportSubscriber(ctx context.Context, req *subscriberv1.ExportSubscriberRequest) (*subscriberv1.ExportSubscriberResponse, error) {
	sub, err := s.svc.Export(ctx, subscription.Ref{ID: req.GetId(), Email: req.GetEmail()})
	if err != nil {
		return nil, toStatus(err)
	}
	p := subscriberToProto(sub)
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(p)
	if err != nil {
		return nil, toStatus(err)
	}
	doc, err := json.MarshalIndent(exportDocument{Kind: "paperroute.subscriber.export.v1", ExportTime: time.Now().UTC(), Subscriber: raw}, "", "  ")
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.ExportSubscriberResponse{Json: string(doc), Subscriber: p}, nil
}

// DeleteSubscriber implements subscriberv1.SubscriberServiceServer.
func (s *Server) DeleteSubscriber(ctx context.Context, req *subscriberv1.DeleteSubscriberRequest) (*subscriberv1.DeleteSubscriberResponse, error) {
	if err := s.svc.Erase(ctx, subscription.Ref{ID: req.GetId(), Email: req.GetEmail()}); err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.DeleteSubscriberResponse{}, nil
}

// Suppress implements subscriberv1.SubscriberServiceServer.
func (s *Server) Suppress(ctx context.Context, req *subscriberv1.SuppressRequest) (*subscriberv1.SuppressResponse, error) {
	sub, err := s.svc.Suppress(ctx, subscription.Ref{ID: req.GetId(), Email: req.GetEmail()}, req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.SuppressResponse{Subscriber: subscriberToProto(sub)}, nil
}

// Unsuppress implements subscriberv1.SubscriberServiceServer.
func (s *Server) Unsuppress(ctx context.Context, req *subscriberv1.UnsuppressRequest) (*subscriberv1.UnsuppressResponse, error) {
	sub, err := s.svc.Unsuppress(ctx, subscription.Ref{ID: req.GetId(), Email: req.GetEmail()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.UnsuppressResponse{Subscriber: subscriberToProto(sub)}, nil
}

// RevokeLinks implements subscriberv1.SubscriberServiceServer.
func (s *Server) RevokeLinks(ctx context.Context, req *subscriberv1.RevokeLinksRequest) (*subscriberv1.RevokeLinksResponse, error) {
	sub, err := s.svc.Lookup(ctx, subscription.Ref{ID: req.GetId(), Email: req.GetEmail()}, "id")
	if err != nil {
		return nil, toStatus(err)
	}
	sub, err = s.svc.RevokeLinks(ctx, sub.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.RevokeLinksResponse{Subscriber: subscriberToProto(sub)}, nil
}

// RecordDeliveryFailure implements subscriberv1.SubscriberServiceServer.
func (s *Server) RecordDeliveryFailure(ctx context.Context, req *subscriberv1.RecordDeliveryFailureRequest) (*subscriberv1.RecordDeliveryFailureResponse, error) {
	var kind subscription.FailureKind
	switch req.GetKind() {
	case subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_HARD_BOUNCE:
		kind = subscription.FailureHardBounce
	case subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_COMPLAINT:
		kind = subscription.FailureComplaint
	}
	if err := s.svc.RecordDeliveryFailure(ctx, req.GetEmail(), kind, req.GetDetail()); err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.RecordDeliveryFailureResponse{}, nil
}
