package digest

import (
	"context"
	"errors"
	"fmt"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/hfdaily"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// ImportPapers parses a document and upserts its papers by arXiv id, all or
// nothing.
func (s *Service) ImportPapers(ctx context.Context, format Format, data []byte) (ImportResult, error) {
	var verr validation.Errors
	if format != FormatHFDailyJSON {
		verr.Add("format", "must be PAPER_FORMAT_HF_DAILY_JSON")
	}
	switch {
	case len(data) == 0:
		verr.Add("data", "is empty")
	case len(data) > s.cfg.MaxImportBytes:
		verr.Addf("data", "document is %d bytes; the limit is %d", len(data), s.cfg.MaxImportBytes)
	}
	if err := verr.Err(); err != nil {
		return ImportResult{}, err
	}
	papers, err := hfdaily.Parse(data)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{IDs: make([]string, len(papers))}
	now := s.now().UTC()
	for i := range papers {
		papers[i].UpdateTime = now
		res.IDs[i] = papers[i].ID
	}
	if len(papers) == 0 {
		return res, nil
	}
	created, err := s.cfg.Papers.UpsertPapers(ctx, papers)
	if err != nil {
		return ImportResult{}, fmt.Errorf("digest: import papers: %w", err)
	}
	res.Created, res.Updated = created, len(papers)-created
	return res, nil
}

// ListPapers returns one page of papers, most upvoted first. pageSize 0
// means DefaultPageSize; larger than MaxPageSize means MaxPageSize.
func (s *Service) ListPapers(ctx context.Context, pageSize int, pageToken string) ([]paper.Paper, string, error) {
	switch {
	case pageSize < 0:
		return nil, "", validation.Field("page_size", "must not be negative")
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	if len(pageToken) > 200 {
		return nil, "", validation.Field("page_token", "is not a token from a previous response")
	}
	papers, next, err := s.cfg.Papers.ListPapers(ctx, pageSize, pageToken)
	if errors.Is(err, ErrBadCursor) {
		return nil, "", validation.Field("page_token", "is not a token from a previous response")
	}
	if err != nil {
		return nil, "", fmt.Errorf("digest: list papers: %w", err)
	}
	return papers, next, nil
}
