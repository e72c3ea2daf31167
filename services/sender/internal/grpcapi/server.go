// Package grpcapi adapts sender.v1.SenderService to the queue package:
// proto in, domain call, proto out. Errors go through the one table in
// status.go.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Server implements senderv1.SenderServiceServer.
type Server struct {
	senderv1.UnimplementedSenderServiceServer
	svc             *queue.Service
	messageIDDomain string
}

// NewServer returns the gRPC adapter for svc.
func NewServer(svc *queue.Service) *Server { return &Server{svc: svc} }

// WithMessageIDDomain makes GetMessage report the Message-ID header on
// domain, as the mailer writes it; it returns s.
func (s *Server) WithMessageIDDomain(domain string) *Server {
	s.messageIDDomain = domain
	return s
}

// PutContent implements senderv1.SenderServiceServer.
func (s *Server) PutContent(ctx context.Context, req *senderv1.PutContentRequest) (*senderv1.PutContentResponse, error) {
	id, err := s.svc.PutContent(ctx, contentFromProto(req.GetContent()))
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &senderv1.PutContentResponse{ContentId: id}, nil
}

// Enqueue implements senderv1.SenderServiceServer.
func (s *Server) Enqueue(ctx context.Context, req *senderv1.EnqueueRequest) (*senderv1.EnqueueResponse, error) {
	batch := make([]queue.NewMessage, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		batch[i] = queue.NewMessage{
			IdempotencyKey:     m.GetIdempotencyKey(),
			Recipient:          m.GetRecipient(),
			Lane:               laneFromProto(m.GetLane()),
			ContentID:          m.GetContentId(),
			Variables:          m.GetVariables(),
			ListUnsubscribeURL: m.GetListUnsubscribeUrl(),
		}
		if m.GetContent() != nil {
			c := contentFromProto(m.GetContent())
			batch[i].Content = &c
		}
	}
	results, err := s.svc.Enqueue(ctx, batch)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &senderv1.EnqueueResponse{Results: make([]*senderv1.EnqueueResult, len(results))}
	for i, r := range results {
		resp.Results[i] = &senderv1.EnqueueResult{IdempotencyKey: r.IdempotencyKey, MessageId: r.MessageID, Duplicate: r.Duplicate}
	}
	return resp, nil
}

// GetMessage implements senderv1.SenderServiceServer.
func (s *Server) GetMessage(ctx context.Context, req *senderv1.GetMessageRequest) (*senderv1.GetMessageResponse, error) {
	m, err := s.svc.GetMessage(ctx, req.GetMessageId(), req.GetIdempotencyKey())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &senderv1.GetMessageResponse{Message: s.messageToProto(m)}, nil
}

// GetQueueStats implements senderv1.SenderServiceServer.
func (s *Server) GetQueueStats(ctx context.Context, _ *senderv1.GetQueueStatsRequest) (*senderv1.GetQueueStatsResponse, error) {
	stats, err := s.svc.Stats(ctx)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	pause, err := s.svc.GetPause(ctx)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	dead, err := s.svc.DeadLetters(ctx)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &senderv1.GetQueueStatsResponse{Paused: pause.Paused, PauseReason: pause.Reason,
		DeadLetterCount: dead.Dead, MissingRecordCount: dead.MissingRecords}
	for _, st := range stats {
		ls := &senderv1.LaneStats{
			Lane:           LaneToProto(st.Lane),
			WaitingCount:   st.Waiting,
			PendingCount:   st.Pending,
			SentCount:      st.Sent,
			DeadCount:      st.Dead,
			RetryingCount:  st.Retrying,
			CancelledCount: st.Cancelled,
			OldestAge:      durationpb.New(st.OldestAge),
		}
		for _, r := range st.Rates {
			ls.Rates = append(ls.Rates, &senderv1.LaneRate{
				Window:             durationpb.New(r.Window),
				SentPerMinute:      r.SentPerMinute,
				DeadPerMinute:      r.DeadPerMinute,
				CancelledPerMinute: r.CancelledPerMinute,
			})
		}
		resp.Lanes = append(resp.Lanes, ls)
	}
	return resp, nil
}

// CancelRecipient implements senderv1.SenderServiceServer.
func (s *Server) CancelRecipient(ctx context.Context, req *senderv1.CancelRecipientRequest) (*senderv1.CancelRecipientResponse, error) {
	at, err := s.svc.CancelRecipient(ctx, req.GetRecipient(), req.GetAllLanes())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &senderv1.CancelRecipientResponse{CancelTime: timestamppb.New(at)}, nil
}

// PauseSending implements senderv1.SenderServiceServer.
func (s *Server) PauseSending(ctx context.Context, req *senderv1.PauseSendingRequest) (*senderv1.PauseSendingResponse, error) {
	p, err := s.svc.PauseSending(ctx, req.GetReason())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &senderv1.PauseSendingResponse{PauseTime: timestamp(p.Since)}, nil
}

// ResumeSending implements senderv1.SenderServiceServer.
func (s *Server) ResumeSending(ctx context.Context, _ *senderv1.ResumeSendingRequest) (*senderv1.ResumeSendingResponse, error) {
	if err := s.svc.ResumeSending(ctx); err != nil {
		return nil, errorTable.Status(err)
	}
	return &senderv1.ResumeSendingResponse{}, nil
}

// messageIDHeader is the Message-ID the mailer writes for a message id.
func (s *Server) messageIDHeader(id string) string {
	if s.messageIDDomain == "" {
		return ""
	}
	return "<" + id + "@" + s.messageIDDomain + ">"
}

func contentFromProto(c *senderv1.Content) queue.Content {
	return queue.Content{Subject: c.GetSubject(), HTML: c.GetHtmlBody(), Text: c.GetTextBody()}
}

func laneFromProto(l senderv1.Lane) queue.Lane {
	switch l {
	case senderv1.Lane_LANE_TRANSACTIONAL:
		return queue.LaneTransactional
	case senderv1.Lane_LANE_BULK:
		return queue.LaneBulk
	}
	return 0 // invalid: rejected by validation
}

// LaneToProto is the proto form of a lane.
func LaneToProto(l queue.Lane) senderv1.Lane {
	switch l {
	case queue.LaneTransactional:
		return senderv1.Lane_LANE_TRANSACTIONAL
	case queue.LaneBulk:
		return senderv1.Lane_LANE_BULK
	}
	return senderv1.Lane_LANE_UNSPECIFIED
}

func stateToProto(s queue.State) senderv1.MessageState {
	switch s {
	case queue.StateQueued:
		return senderv1.MessageState_MESSAGE_STATE_QUEUED
	case queue.StateSent:
		return senderv1.MessageState_MESSAGE_STATE_SENT
	case queue.StateDead:
		return senderv1.MessageState_MESSAGE_STATE_DEAD
	case queue.StateSending:
		return senderv1.MessageState_MESSAGE_STATE_SENDING
	case queue.StateRetrying:
		return senderv1.MessageState_MESSAGE_STATE_RETRYING
	case queue.StateUnknown:
		return senderv1.MessageState_MESSAGE_STATE_OUTCOME_UNKNOWN
	case queue.StateCancelled:
		return senderv1.MessageState_MESSAGE_STATE_CANCELLED
	}
	return senderv1.MessageState_MESSAGE_STATE_UNSPECIFIED
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func (s *Server) messageToProto(m queue.Message) *senderv1.Message {
	return &senderv1.Message{
		Id:                  m.ID,
		IdempotencyKey:      m.IdempotencyKey,
		Recipient:           m.Recipient,
		Lane:                LaneToProto(m.Lane),
		State:               stateToProto(m.State),
		AttemptCount:        int32(min(m.Attempts, 1<<31-1)),
		LastError:           m.LastError,
		ContentId:           m.ContentID,
		CreateTime:          timestamp(m.Created),
		UpdateTime:          timestamp(m.Updated),
		SendTime:            timestamp(m.Sent),
		NextAttemptTime:     timestamp(m.NextAttempt),
		SmtpReply:           m.Reply,
		MessageIdHeader:     s.messageIDHeader(m.ID),
		UnknownOutcomeCount: int32(min(m.UnknownOutcomes, 1<<31-1)),
	}
}

// ListMessages implements senderv1.SenderServiceServer.
func (s *Server) ListMessages(ctx context.Context, req *senderv1.ListMessagesRequest) (*senderv1.ListMessagesResponse, error) {
	var errs validation.Errors
	f := queue.ListFilter{Recipient: req.GetRecipient()}
	if req.GetState() != senderv1.MessageState_MESSAGE_STATE_UNSPECIFIED {
		if f.State = stateFromProto(req.GetState()); f.State == 0 {
			errs.Add("state", "unknown state")
		}
	}
	if req.GetLane() != senderv1.Lane_LANE_UNSPECIFIED {
		if f.Lane = laneFromProto(req.GetLane()); f.Lane == 0 {
			errs.Add("lane", "unknown lane")
		}
	}
	f.CreatedAfter = timeField(&errs, "created_after", req.GetCreatedAfter())
	f.CreatedBefore = timeField(&errs, "created_before", req.GetCreatedBefore())
	if err := errs.Err(); err != nil {
		return nil, errorTable.Status(err)
	}
	msgs, next, err := s.svc.ListMessages(ctx, f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &senderv1.ListMessagesResponse{NextPageToken: next}
	for _, m := range msgs {
		resp.Messages = append(resp.Messages, s.messageToProto(m))
	}
	return resp, nil
}

// RetryDeadLetters implements senderv1.SenderServiceServer.
func (s *Server) RetryDeadLetters(ctx context.Context, req *senderv1.RetryDeadLettersRequest) (*senderv1.RetryDeadLettersResponse, error) {
	var lane queue.Lane
	if req.GetLane() != senderv1.Lane_LANE_UNSPECIFIED {
		if lane = laneFromProto(req.GetLane()); lane == 0 {
			return nil, errorTable.Status(validation.Field("lane", "unknown lane"))
		}
	}
	n, err := s.svc.RetryDeadLetters(ctx, lane, int(req.GetLimit()))
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &senderv1.RetryDeadLettersResponse{RetriedCount: int64(n)}, nil
}

// timeField converts an optional timestamp field: unset is the zero time;
// one outside the range a Timestamp may hold is a violation of field.
func timeField(errs *validation.Errors, field string, ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	if err := ts.CheckValid(); err != nil {
		errs.Add(field, "is not a valid timestamp")
		return time.Time{}
	}
	return ts.AsTime()
}

func stateFromProto(st senderv1.MessageState) queue.State {
	for _, s := range []queue.State{queue.StateQueued, queue.StateSent, queue.StateDead, queue.StateSending,
		queue.StateRetrying, queue.StateUnknown, queue.StateCancelled} {
		if stateToProto(s) == st {
			return s
		}
	}
	return 0
}
