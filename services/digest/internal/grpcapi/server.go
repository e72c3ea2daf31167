// Package grpcapi is the digest service's gRPC adapter: it turns requests
// into calls of package digest and its results and errors back into proto.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
)

// Server implements digestv1.DigestServiceServer.
type Server struct {
	digestv1.UnimplementedDigestServiceServer
	svc        *digest.Service
	papers     *library.Service
	isOperator func(ctx context.Context) bool
}

// NewServer returns a Server for svc (editions, runs, previews) and papers
// (the paper RPCs, papers.go). isOperator reports whether a call carries
// the operator token (for the one RPC whose class depends on the request:
// PreviewDigest).
func NewServer(svc *digest.Service, papers *library.Service, isOperator func(ctx context.Context) bool) *Server {
	return &Server{svc: svc, papers: papers, isOperator: isOperator}
}

// RunDigest implements digestv1.DigestServiceServer.
func (s *Server) RunDigest(ctx context.Context, req *digestv1.RunDigestRequest) (*digestv1.RunDigestResponse, error) {
	rr := digest.RunRequest{Edition: req.GetEdition(), DryRun: req.GetDryRun()}
	if sl := req.GetSlot(); sl != nil {
		if err := sl.CheckValid(); err != nil {
			return nil, errorTable.Status(validation.Field("slot", "is not a valid timestamp"))
		}
		rr.Slot = sl.AsTime()
	}
	run, err := s.svc.RunDigest(ctx, rr)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.RunDigestResponse{Run: runProto(run)}, nil
}

// GetDigestRun implements digestv1.DigestServiceServer.
func (s *Server) GetDigestRun(ctx context.Context, req *digestv1.GetDigestRunRequest) (*digestv1.GetDigestRunResponse, error) {
	run, err := s.svc.GetRun(ctx, req.GetRunId())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.GetDigestRunResponse{Run: runProto(run)}, nil
}

func runProto(r digest.Run) *digestv1.DigestRun {
	state := digestv1.DigestRunState_DIGEST_RUN_STATE_UNSPECIFIED
	switch r.State {
	case digest.RunRunning:
		state = digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING
	case digest.RunSucceeded:
		state = digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED
	case digest.RunFailed:
		state = digestv1.DigestRunState_DIGEST_RUN_STATE_FAILED
	}
	return &digestv1.DigestRun{
		Id:             r.ID,
		Edition:        r.Edition,
		State:          state,
		DryRun:         r.DryRun,
		DueCount:       r.Counts.Due,
		QueuedCount:    r.Counts.Queued,
		DuplicateCount: r.Counts.Duplicate,
		SkippedCount:   r.Counts.Skipped,
		FailedCount:    r.Counts.Failed,
		PaperIds:       r.PaperIDs,
		CreateTime:     timestamp(r.CreateTime),
		FinishTime:     timestamp(r.FinishTime),
		Error:          r.Error,
		MissedCount:    r.Counts.Missed,
		ContentCount:   r.Counts.Contents,
		Slot:           timestamp(r.Slot),
		HeartbeatTime:  timestamp(r.HeartbeatTime),
	}
}

// timestamp is nil for the zero time, so unset times stay unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// ListDigestRuns implements digestv1.DigestServiceServer.
func (s *Server) ListDigestRuns(ctx context.Context, req *digestv1.ListDigestRunsRequest) (*digestv1.ListDigestRunsResponse, error) {
	runs, next, err := s.svc.ListRuns(ctx, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &digestv1.ListDigestRunsResponse{NextPageToken: next}
	for _, r := range runs {
		resp.Runs = append(resp.Runs, runProto(r))
	}
	return resp, nil
}

// PreviewDigest implements digestv1.DigestServiceServer. A preview by
// subscriber id needs the operator token.
func (s *Server) PreviewDigest(ctx context.Context, req *digestv1.PreviewDigestRequest) (*digestv1.PreviewDigestResponse, error) {
	switch {
	case req.GetSubscriberId() != "" && req.GetPreferences() != nil:
		return nil, errorTable.Status(validation.Field("subscriber_id", "set subscriber_id or preferences, not both"))
	case req.GetSubscriberId() != "":
		if !s.isOperator(ctx) {
			return nil, status.Error(codes.PermissionDenied, "a preview by subscriber_id needs the operator token")
		}
		prev, err := s.svc.PreviewSubscriber(ctx, req.GetSubscriberId())
		if err != nil {
			return nil, errorTable.Status(err)
		}
		return &digestv1.PreviewDigestResponse{Subject: prev.Subject, Html: prev.HTML, Text: prev.Text, PaperIds: prev.PaperIDs}, nil
	case req.GetPreferences() == nil:
		return nil, errorTable.Status(validation.Field("preferences", "set subscriber_id or preferences"))
	}
	p := req.GetPreferences()
	prev, err := s.svc.PreviewDigest(ctx, digest.PreviewPrefs{
		Topics: p.GetTopics(), Keywords: p.GetKeywords(),
		Weekly: p.GetFrequency() == subscriberv1.Frequency_FREQUENCY_WEEKLY,
	})
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.PreviewDigestResponse{Subject: prev.Subject, Html: prev.HTML, Text: prev.Text, PaperIds: prev.PaperIDs}, nil
}

// ListTrending implements digestv1.DigestServiceServer.
func (s *Server) ListTrending(ctx context.Context, req *digestv1.ListTrendingRequest) (*digestv1.ListTrendingResponse, error) {
	var window time.Duration
	if w := req.GetWindow(); w != nil {
		if err := w.CheckValid(); err != nil {
			return nil, errorTable.Status(validation.Field("window", "is not a valid duration"))
		}
		window = w.AsDuration()
	}
	picks, scores, err := s.svc.Trending(ctx, window, int(req.GetLimit()), req.GetTopics())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &digestv1.ListTrendingResponse{}
	for i, p := range picks {
		resp.Papers = append(resp.Papers, &digestv1.TrendingPaper{Paper: paperProto(p.Paper), Score: scores[i], Why: p.Why})
	}
	return resp, nil
}

// ListTopics implements digestv1.DigestServiceServer.
func (s *Server) ListTopics(context.Context, *digestv1.ListTopicsRequest) (*digestv1.ListTopicsResponse, error) {
	resp := &digestv1.ListTopicsResponse{}
	for _, t := range s.svc.Topics() {
		resp.Topics = append(resp.Topics, &digestv1.Topic{Id: t.ID, Label: t.Label})
	}
	return resp, nil
}
