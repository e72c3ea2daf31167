package library

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/arxiv"
	"github.com/paperroute/paperroute/services/digest/internal/hfdaily"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Bounds of the library's requests.
const (
	// DefaultPageSize and MaxPageSize bound List pages.
	DefaultPageSize = 50
	MaxPageSize     = 500
	// MaxUpsertPapers is the most papers one Upsert takes.
	MaxUpsertPapers = 1000
	// MaxImportBytes is the largest document any format's parser reads.
	MaxImportBytes = min(hfdaily.MaxBytes, arxiv.MaxBytes)
	// maxPageToken bounds a page token before it is decoded.
	maxPageToken = 200
)

// Config is what a Service needs.
type Config struct {
	Store Store
	// MaxImportBytes bounds an imported document, 1..MaxImportBytes.
	MaxImportBytes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics, if set, counts the papers stored.
	Metrics Metrics
}

// Metrics is told what the library stores. The Prometheus implementation
// is internal/metrics.
type Metrics interface {
	// PapersImported counts n papers stored (created or refreshed) by an
	// Import of format or, with FormatUnspecified, an operator's Upsert.
	PapersImported(format Format, n int)
}

// Service imports, stores and serves papers.
type Service struct {
	store    Store
	maxBytes int
	now      func() time.Time
	metrics  Metrics
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("library: Store is required")
	case cfg.MaxImportBytes < 1 || cfg.MaxImportBytes > MaxImportBytes:
		return nil, fmt.Errorf("library: MaxImportBytes %d is outside 1..%d", cfg.MaxImportBytes, MaxImportBytes)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{store: cfg.Store, maxBytes: cfg.MaxImportBytes, now: now, metrics: cfg.Metrics}, nil
}

// Import parses a document of the given format and upserts its papers, all
// or nothing. Invalid input is a *validation.Error on "format" or "data".
func (s *Service) Import(ctx context.Context, format Format, data []byte) (ImportResult, error) {
	var verr validation.Errors
	if format != FormatHFDailyJSON && format != FormatArxivAtom {
		verr.Add("format", "must be PAPER_FORMAT_HF_DAILY_JSON or PAPER_FORMAT_ARXIV_ATOM")
	}
	switch {
	case len(data) == 0:
		verr.Add("data", "is empty")
	case len(data) > s.maxBytes:
		verr.Addf("data", "document is %d bytes; the limit is %d", len(data), s.maxBytes)
	}
	if err := verr.Err(); err != nil {
		return ImportResult{}, err
	}
	now := s.now().UTC()
	var (
		papers []paper.Paper
		err    error
	)
	switch format {
	case FormatHFDailyJSON:
		papers, err = hfdaily.ParseAt(data, now)
	case FormatArxivAtom:
		papers, err = arxiv.Parse(data, now)
	}
	if err != nil {
		return ImportResult{}, err
	}
	return s.counted(format)(s.store1(ctx, papers, now, "import"))
}

// counted returns a pass-through of store1's results that counts the
// papers stored, by format (FormatUnspecified: an operator's upsert).
func (s *Service) counted(format Format) func(ImportResult, error) (ImportResult, error) {
	return func(res ImportResult, err error) (ImportResult, error) {
		if err == nil && s.metrics != nil {
			s.metrics.PapersImported(format, res.Created+res.Updated)
		}
		return res, err
	}
}

// store1 stamps papers and stores them in one Store call.
func (s *Service) store1(ctx context.Context, papers []paper.Paper, now time.Time, op string) (ImportResult, error) {
	res := ImportResult{IDs: make([]string, len(papers))}
	for i := range papers {
		papers[i].UpdateTime = now
		papers[i].EstimateFeaturedDay(now)
		res.IDs[i] = papers[i].ID
	}
	if len(papers) == 0 {
		return res, nil
	}
	created, err := s.store.UpsertPapers(ctx, papers)
	if err != nil {
		return ImportResult{}, fmt.Errorf("library: %s %d papers: %w", op, len(papers), err)
	}
	res.Created, res.Updated = created, len(papers)-created
	return res, nil
}

// Upsert validates papers given field by field (an operator's) and stores
// them, all or nothing. Every count is taken as given (Counted = all).
// Violations name "papers[i].<proto field>".
func (s *Service) Upsert(ctx context.Context, papers []paper.Paper) (ImportResult, error) {
	if len(papers) == 0 || len(papers) > MaxUpsertPapers {
		return ImportResult{}, validation.Field("papers", fmt.Sprintf("must hold 1 to %d papers; got %d", MaxUpsertPapers, len(papers)))
	}
	now := s.now().UTC()
	var verr validation.Errors
	clean := make([]paper.Paper, len(papers))
	first := map[string]int{}
	for i, p := range papers {
		c, ok := check(&verr, fmt.Sprintf("papers[%d].", i), p, now)
		if !ok {
			continue
		}
		if j, dup := first[c.ID]; dup {
			verr.Addf(fmt.Sprintf("papers[%d].id", i), "%s appears twice (also papers[%d])", c.ID, j)
			continue
		}
		first[c.ID] = i
		clean[i] = c
	}
	if err := verr.Err(); err != nil {
		return ImportResult{}, err
	}
	return s.counted(FormatUnspecified)(s.store1(ctx, clean, now, "upsert"))
}

// check validates and normalises one operator paper; problems go to verr
// under prefix.
func check(verr *validation.Errors, prefix string, p paper.Paper, now time.Time) (paper.Paper, bool) {
	before := verr.Len()
	id, ok := paper.NormalizeID(p.ID)
	if !ok {
		verr.Add(prefix+"id", "must be an arXiv id such as 2606.13681 or hep-th/9901001")
	}
	c := paper.Paper{
		ID: id, Title: paper.CleanText(p.Title), Summary: paper.CleanText(p.Summary),
		AISummary: paper.CleanText(p.AISummary), Upvotes: p.Upvotes, Comments: p.Comments,
		GitHubStars: p.GitHubStars, GitHubRepo: p.GitHubRepo, ProjectPage: p.ProjectPage,
		PublishTime: p.PublishTime.UTC(), SubmitTime: p.SubmitTime.UTC(), FeaturedDay: p.FeaturedDay,
		Counted: paper.CountAll,
	}
	if p.PublishTime.IsZero() {
		c.PublishTime = time.Time{}
	}
	if p.SubmitTime.IsZero() {
		c.SubmitTime = time.Time{}
	}
	for _, f := range []struct {
		field, text string
		max         int
	}{
		{"title", c.Title, paper.MaxTitleRunes}, {"summary", c.Summary, paper.MaxSummaryRunes},
		{"ai_summary", c.AISummary, paper.MaxAISummaryRunes},
	} {
		if n := utf8.RuneCountInString(f.text); n > f.max {
			verr.Addf(prefix+f.field, "is %d characters; the limit is %d", n, f.max)
		}
	}
	if c.Title == "" {
		verr.Add(prefix+"title", "is required")
	}
	c.Authors = cleanList(verr, prefix+"authors", p.Authors, paper.MaxAuthors, paper.MaxAuthorRunes)
	c.Keywords = cleanList(verr, prefix+"keywords", p.Keywords, paper.MaxKeywords, paper.MaxKeywordRunes)
	for _, n := range []struct {
		field string
		v     int
	}{{"upvotes", c.Upvotes}, {"comment_count", c.Comments}, {"github_stars", c.GitHubStars}} {
		if n.v < 0 || n.v > paper.MaxCount {
			verr.Add(prefix+n.field, "must not be negative")
		}
	}
	for _, l := range []struct{ field, url string }{{"github_repo", c.GitHubRepo}, {"project_page", c.ProjectPage}} {
		if l.url != "" && !validLink(l.url) {
			verr.Addf(prefix+l.field, "must be an https URL of at most %d bytes", paper.MaxURLBytes)
		}
	}
	for _, t := range []struct {
		field string
		t     time.Time
	}{{"publish_time", c.PublishTime}, {"submit_time", c.SubmitTime}} {
		if problem := paper.CheckTime(t.t, now); problem != "" {
			verr.Add(prefix+t.field, problem)
		}
	}
	if c.FeaturedDay != "" {
		day, ok := paper.ParseDay(c.FeaturedDay, now)
		switch {
		case !ok:
			verr.Add(prefix+"featured_day", "must be a day written YYYY-MM-DD, from 1991 to at most two days ahead")
		case c.SubmitTime.IsZero():
			// An operator's featured day is as good as a daily list's: it
			// is when the paper was featured (ranking ages papers by it).
			c.SubmitTime = day
		case paper.Day(c.SubmitTime) != c.FeaturedDay:
			verr.Add(prefix+"featured_day", "must be submit_time's day (UTC) when both are given")
		}
	} else if !c.SubmitTime.IsZero() {
		c.FeaturedDay = paper.Day(c.SubmitTime)
	}
	return c, verr.Len() == before
}

// cleanList cleans a list of short texts, refusing one too long or too many.
func cleanList(verr *validation.Errors, field string, items []string, maxItems, maxRunes int) []string {
	if len(items) > maxItems {
		verr.Addf(field, "holds %d items; the limit is %d", len(items), maxItems)
		return nil
	}
	var out []string
	for i, item := range items {
		item = paper.CleanText(item)
		if n := utf8.RuneCountInString(item); n > maxRunes {
			verr.Addf(fmt.Sprintf("%s[%d]", field, i), "is %d characters; the limit is %d", n, maxRunes)
			continue
		}
		if item != "" {
			out = append(out, item)
		}
	}
	return out
}

func validLink(raw string) bool {
	if len(raw) > paper.MaxURLBytes {
		return false
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7F {
			return false
		}
	}
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
}

// Get returns one paper. id is an arXiv id; a version suffix is ignored.
func (s *Service) Get(ctx context.Context, id string) (paper.Paper, error) {
	norm, ok := paper.NormalizeID(id)
	if !ok {
		return paper.Paper{}, validation.Field("id", "must be an arXiv id such as 2606.13681 or hep-th/9901001")
	}
	p, err := s.store.GetPaper(ctx, norm)
	if err != nil {
		return paper.Paper{}, fmt.Errorf("library: get paper %s: %w", norm, err)
	}
	return p, nil
}

// Delete removes one paper, or returns ErrNotFound.
func (s *Service) Delete(ctx context.Context, id string) error {
	norm, ok := paper.NormalizeID(id)
	if !ok {
		return validation.Field("id", "must be an arXiv id such as 2606.13681 or hep-th/9901001")
	}
	if err := s.store.DeletePaper(ctx, norm); err != nil {
		return fmt.Errorf("library: delete paper %s: %w", norm, err)
	}
	return nil
}

// List returns one page of papers featured on day ("YYYY-MM-DD"; "" for
// every day, newest first). pageSize 0 means DefaultPageSize; larger than
// MaxPageSize means MaxPageSize.
func (s *Service) List(ctx context.Context, day string, pageSize int, pageToken string) ([]paper.Paper, string, error) {
	var verr validation.Errors
	switch {
	case pageSize < 0:
		verr.Add("page_size", "must not be negative")
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	if len(pageToken) > maxPageToken {
		verr.Add("page_token", "is not a token from a previous response")
	}
	if day != "" {
		if _, ok := paper.ParseDay(day, s.now()); !ok {
			verr.Add("featured_day", "must be a day written YYYY-MM-DD, e.g. 2026-06-12")
		}
	}
	if err := verr.Err(); err != nil {
		return nil, "", err
	}
	papers, next, err := s.store.ListPapersByDay(ctx, day, pageSize, pageToken)
	if errors.Is(err, ErrBadCursor) {
		return nil, "", validation.Field("page_token", "is not a token from a previous response with this featured_day")
	}
	if err != nil {
		return nil, "", fmt.Errorf("library: list papers: %w", err)
	}
	return papers, next, nil
}
