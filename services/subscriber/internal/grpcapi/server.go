// Package grpcapi is the gRPC face of the subscriber service: a thin
// adapter from subscriberv1 messages to package subscription and back.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// SubscribeMessage is the one answer every valid Subscribe gets, whatever
// the address's state, so the answer reveals nothing.
const SubscribeMessage = "Thanks! Check your inbox to confirm your subscription."

// Server implements subscriberv1.SubscriberServiceServer. Register it with
// subscriberv1.RegisterSubscriberServiceServer.
type Server struct {
	subscriberv1.UnimplementedSubscriberServiceServer
	svc *subscription.Service
}

// NewServer returns the gRPC adapter for svc.
func NewServer(svc *subscription.Service) *Server {
	return &Server{svc: svc}
}

// Subscribe implements subscriberv1.SubscriberServiceServer.
func (s *Server) Subscribe(ctx context.Context, req *subscriberv1.SubscribeRequest) (*subscriberv1.SubscribeResponse, error) {
	err := s.svc.Subscribe(ctx, subscription.SubscribeRequest{
		Email:              req.GetEmail(),
		ConsentTextVersion: req.GetConsentTextVersion(),
		Client:             subscription.Client{IP: req.GetClientIp(), UserAgent: req.GetUserAgent()},
	})
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &subscriberv1.SubscribeResponse{Message: SubscribeMessage}, nil
}

// ConfirmSubscription implements subscriberv1.SubscriberServiceServer.
func (s *Server) ConfirmSubscription(ctx context.Context, req *subscriberv1.ConfirmSubscriptionRequest) (*subscriberv1.ConfirmSubscriptionResponse, error) {
	sub, err := s.svc.Confirm(ctx, req.GetToken(), subscription.Client{IP: req.GetClientIp(), UserAgent: req.GetUserAgent()})
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &subscriberv1.ConfirmSubscriptionResponse{Email: sub.Email, State: stateToProto(sub.State)}, nil
}

// Unsubscribe implements subscriberv1.SubscriberServiceServer.
func (s *Server) Unsubscribe(ctx context.Context, req *subscriberv1.UnsubscribeRequest) (*subscriberv1.UnsubscribeResponse, error) {
	sub, err := s.svc.Unsubscribe(ctx, req.GetToken(), subscription.ChannelAPI)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &subscriberv1.UnsubscribeResponse{Email: sub.Email}, nil
}

// GetSubscriber implements subscriberv1.SubscriberServiceServer.
func (s *Server) GetSubscriber(ctx context.Context, req *subscriberv1.GetSubscriberRequest) (*subscriberv1.GetSubscriberResponse, error) {
	var (
		sub subscription.Subscriber
		err error
	)
	switch id, email := req.GetSubscriberId(), req.GetEmail(); {
	case id != "" && email != "":
		err = &validation.Error{Violations: []validation.Violation{
			{Field: "subscriber_id", Description: "set exactly one of subscriber_id and email, not both"},
			{Field: "email", Description: "set exactly one of subscriber_id and email, not both"},
		}}
	case id == "" && email == "":
		err = &validation.Error{Violations: []validation.Violation{
			{Field: "subscriber_id", Description: "set exactly one of subscriber_id and email"},
			{Field: "email", Description: "set exactly one of subscriber_id and email"},
		}}
	case id != "":
		sub, err = s.svc.Get(ctx, id)
	default:
		sub, err = s.svc.GetByEmail(ctx, email)
	}
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &subscriberv1.GetSubscriberResponse{Subscriber: subscriberToProto(sub)}, nil
}

// ListSubscribers implements subscriberv1.SubscriberServiceServer.
func (s *Server) ListSubscribers(ctx context.Context, req *subscriberv1.ListSubscribersRequest) (*subscriberv1.ListSubscribersResponse, error) {
	res, err := s.svc.List(ctx, subscription.ListRequest{
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
		State:     stateFromProto(req.GetState()),
	})
	if err != nil {
		return nil, errorTable.Status(err)
	}
	out := &subscriberv1.ListSubscribersResponse{NextPageToken: res.NextPageToken}
	for _, sub := range res.Subscribers {
		out.Subscribers = append(out.Subscribers, subscriberToProto(sub))
	}
	return out, nil
}

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
	out := &subscriberv1.ListDueSubscribersResponse{NextPageToken: res.NextPageToken}
	for _, d := range res.Subscribers {
		out.Subscribers = append(out.Subscribers, &subscriberv1.DueSubscriber{
			SubscriberId:   d.ID,
			Email:          d.Email,
			UnsubscribeUrl: d.UnsubscribeURL,
		})
	}
	return out, nil
}

func subscriberToProto(s subscription.Subscriber) *subscriberv1.Subscriber {
	c := s.Consent
	return &subscriberv1.Subscriber{
		Id:         s.ID,
		Email:      s.Email,
		State:      stateToProto(s.State),
		CreateTime: timestamp(s.CreateTime),
		UpdateTime: timestamp(s.UpdateTime),
		Consent: &subscriberv1.ConsentEvidence{
			ConsentTextVersion: c.ConsentTextVersion,
			SignupTime:         timestamp(c.SignupTime),
			SignupIp:           c.SignupIP,
			SignupUserAgent:    c.SignupUserAgent,
			ConfirmTime:        timestamp(c.ConfirmTime),
			ConfirmIp:          c.ConfirmIP,
			ConfirmUserAgent:   c.ConfirmUserAgent,
			UnsubscribeTime:    timestamp(c.UnsubscribeTime),
			UnsubscribeChannel: string(c.UnsubscribeChannel),
		},
	}
}

// timestamp is nil for the zero time, so unset times stay unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func stateToProto(s subscription.State) subscriberv1.SubscriberState {
	switch s {
	case subscription.StatePending:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING
	case subscription.StateActive:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE
	case subscription.StateUnsubscribed:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED
	case subscription.StateSuppressed:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED
	}
	return subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSPECIFIED
}

// stateFromProto maps a state filter; a value this build does not know
// maps to an invalid domain state, which List rejects on "state".
func stateFromProto(s subscriberv1.SubscriberState) subscription.State {
	switch s {
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSPECIFIED:
		return subscription.StateUnspecified
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING:
		return subscription.StatePending
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE:
		return subscription.StateActive
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED:
		return subscription.StateUnsubscribed
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED:
		return subscription.StateSuppressed
	}
	return subscription.State(-1)
}
