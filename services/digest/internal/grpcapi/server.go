// Package grpcapi is the digest service's gRPC adapter: it turns requests
// into calls of package digest and its results and errors back into proto.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/grpcerr"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
)

// Server implements digestv1.DigestServiceServer.
type Server struct {
	digestv1.UnimplementedDigestServiceServer
	svc    *digest.Service
	papers *library.Service
	status grpcerr.Table
}

// NewServer returns a Server for svc (editions and runs) and papers (the
// paper RPCs, papers.go).
func NewServer(svc *digest.Service, papers *library.Service) *Server {
	return &Server{svc: svc, papers: papers, status: StatusTable()}
}

// RunDigest implements digestv1.DigestServiceServer.
func (s *Server) RunDigest(ctx context.Context, req *digestv1.RunDigestRequest) (*digestv1.RunDigestResponse, error) {
	run, err := s.svc.RunDigest(ctx, req.GetEdition(), req.GetDryRun())
	if err != nil {
		return nil, s.status.Status(err)
	}
	return &digestv1.RunDigestResponse{Run: runProto(run)}, nil
}

// GetDigestRun implements digestv1.DigestServiceServer.
func (s *Server) GetDigestRun(ctx context.Context, req *digestv1.GetDigestRunRequest) (*digestv1.GetDigestRunResponse, error) {
	run, err := s.svc.GetRun(ctx, req.GetRunId())
	if err != nil {
		return nil, s.status.Status(err)
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
	}
}

// timestamp is nil for the zero time, so unset times stay unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
