// Package peers adapts the subscriber and sender services' gRPC clients to
// the interfaces package digest declares.
package peers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/paperroute/paperroute/platform/validation"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

// callTimeout bounds one call to a peer, so a stuck peer fails a page
// instead of hanging a run.
const callTimeout = 30 * time.Second

// DueLister is the part of the subscriber client the digest uses.
type DueLister interface {
	ListDueSubscribers(ctx context.Context, in *subscriberv1.ListDueSubscribersRequest, opts ...grpc.CallOption) (*subscriberv1.ListDueSubscribersResponse, error)
	GetSubscriber(ctx context.Context, in *subscriberv1.GetSubscriberRequest, opts ...grpc.CallOption) (*subscriberv1.GetSubscriberResponse, error)
}

// Subscribers is digest.Subscribers over the subscriber service.
type Subscribers struct {
	client DueLister

	mu    sync.Mutex
	zones map[string]*time.Location // loaded time zones by name
}

var (
	_ digest.Subscribers      = (*Subscribers)(nil)
	_ digest.PreferenceSource = (*Subscribers)(nil)
)

// Preferences implements digest.PreferenceSource with GetSubscriber.
func (s *Subscribers) Preferences(ctx context.Context, subscriberID string) (digest.PreviewPrefs, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := s.client.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{SubscriberId: subscriberID})
	switch status.Code(err) {
	case codes.NotFound:
		return digest.PreviewPrefs{}, digest.ErrSubscriberNotFound
	case codes.InvalidArgument:
		return digest.PreviewPrefs{}, validation.Field("subscriber_id", "is not a subscriber id")
	}
	if err != nil {
		return digest.PreviewPrefs{}, callError("get subscriber", err)
	}
	p := resp.GetSubscriber().GetPreferences()
	return digest.PreviewPrefs{
		Topics: p.GetTopics(), Keywords: p.GetKeywords(),
		Weekly: p.GetFrequency() == subscriberv1.Frequency_FREQUENCY_WEEKLY,
	}, nil
}

// NewSubscribers returns a digest.Subscribers calling client.
func NewSubscribers(client DueLister) *Subscribers {
	return &Subscribers{client: client, zones: map[string]*time.Location{}}
}

// ListDue implements digest.Subscribers.
func (s *Subscribers) ListDue(ctx context.Context, dueTime time.Time, pageSize int, pageToken string) ([]digest.DueSubscriber, string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := &subscriberv1.ListDueSubscribersRequest{PageSize: int32(pageSize), PageToken: pageToken}
	if !dueTime.IsZero() {
		req.DueTime = timestamppb.New(dueTime)
	}
	resp, err := s.client.ListDueSubscribers(ctx, req)
	if err != nil {
		return nil, "", callError("list due subscribers", err)
	}
	subs := make([]digest.DueSubscriber, len(resp.GetSubscribers()))
	for i, d := range resp.GetSubscribers() {
		p := d.GetPreferences()
		subs[i] = digest.DueSubscriber{
			ID: d.GetSubscriberId(), Email: d.GetEmail(),
			UnsubscribeURL: d.GetUnsubscribeUrl(), ManageURL: d.GetManageUrl(),
			Topics: p.GetTopics(), Keywords: p.GetKeywords(),
			Schedule: s.schedule(p),
		}
	}
	return subs, resp.GetNextPageToken(), nil
}

// schedule reads the scheduling preferences. Unset fields take the
// subscriber service's defaults (daily, Monday, UTC); a time zone that
// does not load leaves Location nil, which is never due in a slot.
func (s *Subscribers) schedule(p *subscriberv1.Preferences) schedule.Prefs {
	out := schedule.Prefs{Frequency: schedule.Daily, Weekday: time.Monday, Hour: int(p.GetDeliveryHour()), Location: time.UTC}
	if p.GetFrequency() == subscriberv1.Frequency_FREQUENCY_WEEKLY {
		out.Frequency = schedule.Weekly
	}
	if d := p.GetWeeklyDay(); d >= subscriberv1.Weekday_WEEKDAY_MONDAY && d <= subscriberv1.Weekday_WEEKDAY_SUNDAY {
		out.Weekday = time.Weekday(int(d) % 7) // ISO Monday=1..Sunday=7 → Go Sunday=0
	}
	if tz := p.GetTimezone(); tz != "" {
		out.Location = s.location(tz)
	}
	return out
}

// location loads a time zone once.
func (s *Subscribers) location(name string) *time.Location {
	s.mu.Lock()
	defer s.mu.Unlock()
	if loc, ok := s.zones[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if len(s.zones) < 1000 { // IANA has ~600 names; bound what junk can add
		s.zones[name] = loc
	}
	return loc
}

// SenderClient is the part of the sender client the digest uses.
type SenderClient interface {
	PutContent(ctx context.Context, in *senderv1.PutContentRequest, opts ...grpc.CallOption) (*senderv1.PutContentResponse, error)
	Enqueue(ctx context.Context, in *senderv1.EnqueueRequest, opts ...grpc.CallOption) (*senderv1.EnqueueResponse, error)
}

// Sender is digest.Sender over the sender service.
type Sender struct {
	client SenderClient
}

var _ digest.Sender = (*Sender)(nil)

// NewSender returns a digest.Sender calling client.
func NewSender(client SenderClient) *Sender { return &Sender{client: client} }

// PutContent implements digest.Sender.
func (s *Sender) PutContent(ctx context.Context, c digest.Content) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := s.client.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{
		Subject: c.Subject, HtmlBody: c.HTML, TextBody: c.Text,
	}})
	if err != nil {
		return "", callError("put content", err)
	}
	if resp.GetContentId() == "" {
		return "", fmt.Errorf("peers: put content: the sender returned no content id")
	}
	return resp.GetContentId(), nil
}

// Enqueue implements digest.Sender: every message goes on the bulk lane.
// InvalidArgument (an invalid message refused the whole batch) is reported
// as digest.ErrRejected.
func (s *Sender) Enqueue(ctx context.Context, msgs []digest.Message) ([]digest.EnqueueResult, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := &senderv1.EnqueueRequest{Messages: make([]*senderv1.OutboundMessage, len(msgs))}
	for i, m := range msgs {
		req.Messages[i] = &senderv1.OutboundMessage{
			IdempotencyKey:     m.Key,
			Recipient:          m.Recipient,
			Lane:               senderv1.Lane_LANE_BULK,
			ContentId:          m.ContentID,
			Variables:          m.Variables,
			ListUnsubscribeUrl: m.ListUnsubscribeURL,
		}
	}
	resp, err := s.client.Enqueue(ctx, req)
	op := fmt.Sprintf("enqueue %d messages", len(msgs))
	if status.Code(err) == codes.InvalidArgument {
		return nil, fmt.Errorf("%w: %w", digest.ErrRejected, callError(op, err))
	}
	if err != nil {
		return nil, callError(op, err)
	}
	results := make([]digest.EnqueueResult, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		results[i] = digest.EnqueueResult{Key: r.GetIdempotencyKey(), Duplicate: r.GetDuplicate()}
	}
	return results, nil
}

// callError describes a failed call as "peers: <op>: <code>: <message>",
// short enough to keep on a run for operators.
func callError(op string, err error) error {
	st := status.Convert(err)
	return fmt.Errorf("peers: %s: %s: %s", op, st.Code(), st.Message())
}
