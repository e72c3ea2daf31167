// Package grpcapi is the gRPC face of the subscriber service: a thin
// adapter from subscriberv1 messages to package subscription and back.
package grpcapi

import (
	"context"

	"github.com/paperroute/paperroute/platform/browserrpc"

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
	var errs validation.Errors
	freq := frequencyFromProto(&errs, "frequency", req.GetFrequency())
	day := weekdayFromProto(&errs, "weekly_day", req.GetWeeklyDay(), req.GetFrequency())
	if err := errs.Err(); err != nil {
		return nil, toStatus(err)
	}
	var hour *int
	if req.DeliveryHour != nil {
		h := int(req.GetDeliveryHour())
		hour = &h
	}
	err := s.svc.Subscribe(ctx, subscription.SubscribeRequest{
		Email:              req.GetEmail(),
		ConsentTextVersion: req.GetConsentTextVersion(),
		Client:             caller(ctx, req.GetClientIp(), req.GetUserAgent()),
		Topics:             req.GetTopics(),
		Keywords:           req.GetKeywords(),
		Frequency:          freq,
		WeeklyDay:          day,
		DeliveryHour:       hour,
		Timezone:           req.GetTimezone(),
		Locale:             req.GetLocale(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.SubscribeResponse{Message: SubscribeMessage}, nil
}

// ConfirmSubscription implements subscriberv1.SubscriberServiceServer.
func (s *Server) ConfirmSubscription(ctx context.Context, req *subscriberv1.ConfirmSubscriptionRequest) (*subscriberv1.ConfirmSubscriptionResponse, error) {
	sub, err := s.svc.Confirm(ctx, req.GetToken(), caller(ctx, req.GetClientIp(), req.GetUserAgent()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.ConfirmSubscriptionResponse{Email: sub.Email, State: stateToProto(sub.State)}, nil
}

// Unsubscribe implements subscriberv1.SubscriberServiceServer.
func (s *Server) Unsubscribe(ctx context.Context, req *subscriberv1.UnsubscribeRequest) (*subscriberv1.UnsubscribeResponse, error) {
	sub, err := s.svc.Unsubscribe(ctx, req.GetToken(), subscription.ChannelAPI)
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.UnsubscribeResponse{Email: sub.Email}, nil
}

// GetPreferences implements subscriberv1.SubscriberServiceServer.
func (s *Server) GetPreferences(ctx context.Context, req *subscriberv1.GetPreferencesRequest) (*subscriberv1.GetPreferencesResponse, error) {
	sub, err := s.svc.GetPreferences(ctx, req.GetToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.GetPreferencesResponse{Email: sub.Email, State: stateToProto(sub.State), Preferences: preferencesToProto(sub.Preferences)}, nil
}

// UpdatePreferences implements subscriberv1.SubscriberServiceServer.
func (s *Server) UpdatePreferences(ctx context.Context, req *subscriberv1.UpdatePreferencesRequest) (*subscriberv1.UpdatePreferencesResponse, error) {
	var errs validation.Errors
	p := req.GetPreferences()
	if p == nil {
		errs.Add("preferences", "is required")
	}
	freq := frequencyFromProto(&errs, "preferences.frequency", p.GetFrequency())
	day := weekdayFromProto(&errs, "preferences.weekly_day", p.GetWeeklyDay(), p.GetFrequency())
	if err := errs.Err(); err != nil {
		return nil, toStatus(err)
	}
	topics, keywords, hour, tz, locale := p.GetTopics(), p.GetKeywords(), int(p.GetDeliveryHour()), p.GetTimezone(), p.GetLocale()
	sub, err := s.svc.UpdatePreferences(ctx, req.GetToken(), subscription.PreferencesUpdate{
		Topics: &topics, Keywords: &keywords, Frequency: &freq, WeeklyDay: &day,
		DeliveryHour: &hour, Timezone: &tz, Locale: &locale,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &subscriberv1.UpdatePreferencesResponse{Preferences: preferencesToProto(sub.Preferences)}, nil
}

// caller is the end user behind a call: for a browser call (Connect or
// gRPC-Web through the HTTP port) the address and user agent the server saw,
// which the page cannot forge; for native gRPC what the frontend passed.
func caller(ctx context.Context, ip, userAgent string) subscription.Client {
	if bip, bua, ok := browserrpc.Caller(ctx); ok {
		return subscription.Client{IP: bip, UserAgent: bua}
	}
	return subscription.Client{IP: ip, UserAgent: userAgent}
}
