// Package grpcapi is the digest service's gRPC adapter: it turns requests
// into calls of package digest and its results and errors back into proto.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Server implements digestv1.DigestServiceServer.
type Server struct {
	digestv1.UnimplementedDigestServiceServer
	svc *digest.Service
}

// NewServer returns a Server for svc.
func NewServer(svc *digest.Service) *Server {
	return &Server{svc: svc}
}

// ImportPapers implements digestv1.DigestServiceServer.
func (s *Server) ImportPapers(ctx context.Context, req *digestv1.ImportPapersRequest) (*digestv1.ImportPapersResponse, error) {
	format := digest.FormatUnspecified
	if req.GetFormat() == digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON {
		format = digest.FormatHFDailyJSON
	}
	res, err := s.svc.ImportPapers(ctx, format, req.GetData())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.ImportPapersResponse{
		CreatedCount: int32(res.Created),
		UpdatedCount: int32(res.Updated),
		PaperIds:     res.IDs,
	}, nil
}

// ListPapers implements digestv1.DigestServiceServer.
func (s *Server) ListPapers(ctx context.Context, req *digestv1.ListPapersRequest) (*digestv1.ListPapersResponse, error) {
	papers, next, err := s.svc.ListPapers(ctx, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &digestv1.ListPapersResponse{Papers: make([]*digestv1.Paper, len(papers)), NextPageToken: next}
	for i, p := range papers {
		resp.Papers[i] = paperProto(p)
	}
	return resp, nil
}

// RunDigest implements digestv1.DigestServiceServer.
func (s *Server) RunDigest(ctx context.Context, req *digestv1.RunDigestRequest) (*digestv1.RunDigestResponse, error) {
	run, err := s.svc.RunDigest(ctx, req.GetEdition(), req.GetDryRun())
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

func paperProto(p paper.Paper) *digestv1.Paper {
	return &digestv1.Paper{
		Id:           p.ID,
		Title:        p.Title,
		Summary:      p.Summary,
		Authors:      p.Authors,
		Upvotes:      int32(p.Upvotes),
		CommentCount: int32(p.Comments),
		GithubStars:  int32(p.GitHubStars),
		GithubRepo:   p.GitHubRepo,
		AiSummary:    p.AISummary,
		Keywords:     p.Keywords,
		PublishTime:  timestamp(p.PublishTime),
		SubmitTime:   timestamp(p.SubmitTime),
		UpdateTime:   timestamp(p.UpdateTime),
		Url:          p.URL(),
	}
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
	}
}

// timestamp is nil for the zero time, so unset times stay unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
