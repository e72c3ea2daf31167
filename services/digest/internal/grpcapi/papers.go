package grpcapi

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// The paper RPCs: a thin layer over package library.

// ImportPapers implements digestv1.DigestServiceServer.
func (s *Server) ImportPapers(ctx context.Context, req *digestv1.ImportPapersRequest) (*digestv1.ImportPapersResponse, error) {
	format := library.FormatUnspecified
	switch req.GetFormat() {
	case digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON:
		format = library.FormatHFDailyJSON
	case digestv1.PaperFormat_PAPER_FORMAT_ARXIV_ATOM:
		format = library.FormatArxivAtom
	}
	res, err := s.papers.Import(ctx, format, req.GetData())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.ImportPapersResponse{
		CreatedCount: int32(res.Created),
		UpdatedCount: int32(res.Updated),
		PaperIds:     res.IDs,
	}, nil
}

// UpsertPapers implements digestv1.DigestServiceServer.
func (s *Server) UpsertPapers(ctx context.Context, req *digestv1.UpsertPapersRequest) (*digestv1.UpsertPapersResponse, error) {
	papers := make([]paper.Paper, len(req.GetPapers()))
	var verr validation.Errors
	for i, pp := range req.GetPapers() {
		p, err := paperFromProto(pp)
		if err != nil {
			verr.Add(fmt.Sprintf("papers[%d].%s", i, err.field), err.problem)
		}
		papers[i] = p
	}
	if err := verr.Err(); err != nil {
		return nil, errorTable.Status(err)
	}
	res, err := s.papers.Upsert(ctx, papers)
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.UpsertPapersResponse{
		CreatedCount: int32(res.Created),
		UpdatedCount: int32(res.Updated),
		PaperIds:     res.IDs,
	}, nil
}

// GetPaper implements digestv1.DigestServiceServer.
func (s *Server) GetPaper(ctx context.Context, req *digestv1.GetPaperRequest) (*digestv1.GetPaperResponse, error) {
	p, err := s.papers.Get(ctx, req.GetId())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.GetPaperResponse{Paper: paperProto(p)}, nil
}

// DeletePaper implements digestv1.DigestServiceServer.
func (s *Server) DeletePaper(ctx context.Context, req *digestv1.DeletePaperRequest) (*digestv1.DeletePaperResponse, error) {
	if err := s.papers.Delete(ctx, req.GetId()); err != nil {
		return nil, errorTable.Status(err)
	}
	return &digestv1.DeletePaperResponse{}, nil
}

// ListPapers implements digestv1.DigestServiceServer.
func (s *Server) ListPapers(ctx context.Context, req *digestv1.ListPapersRequest) (*digestv1.ListPapersResponse, error) {
	papers, next, err := s.papers.List(ctx, req.GetFeaturedDay(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, errorTable.Status(err)
	}
	resp := &digestv1.ListPapersResponse{Papers: make([]*digestv1.Paper, len(papers)), NextPageToken: next}
	for i, p := range papers {
		resp.Papers[i] = paperProto(p)
	}
	return resp, nil
}

type fieldProblem struct{ field, problem string }

// paperFromProto converts an operator's paper; only timestamps can be
// malformed at this layer (the library checks everything else).
func paperFromProto(pp *digestv1.Paper) (paper.Paper, *fieldProblem) {
	p := paper.Paper{
		ID: pp.GetId(), Title: pp.GetTitle(), Summary: pp.GetSummary(), Authors: pp.GetAuthors(),
		Upvotes: int(pp.GetUpvotes()), Comments: int(pp.GetCommentCount()), GitHubStars: int(pp.GetGithubStars()),
		GitHubRepo: pp.GetGithubRepo(), ProjectPage: pp.GetProjectPage(), AISummary: pp.GetAiSummary(),
		Keywords: pp.GetKeywords(), FeaturedDay: pp.GetFeaturedDay(),
	}
	for _, t := range []struct {
		field string
		ts    *timestamppb.Timestamp
		dst   *time.Time
	}{{"publish_time", pp.GetPublishTime(), &p.PublishTime}, {"submit_time", pp.GetSubmitTime(), &p.SubmitTime}} {
		if t.ts == nil {
			continue
		}
		if err := t.ts.CheckValid(); err != nil {
			return p, &fieldProblem{t.field, "is not a valid timestamp"}
		}
		*t.dst = t.ts.AsTime()
	}
	return p, nil
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
		FeaturedDay:  p.FeaturedDay,
		ProjectPage:  p.ProjectPage,
	}
}
