// Package library is the digest service's paper library: it imports papers
// from every source (Hugging Face daily papers JSON, arXiv Atom, operator
// upserts), stores them by arXiv id with the merge rules of paper.Merge, and
// serves the operator's reads and deletes. The source poller imports through
// it too.
//
// It declares the Store it needs and imports neither gRPC nor Redis.
package library

import (
	"context"
	"errors"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Errors callers can test for with errors.Is.
var (
	// ErrNotFound means no paper has that id.
	ErrNotFound = errors.New("library: paper not found")
	// ErrBadCursor is returned by a Store for a cursor it did not issue.
	ErrBadCursor = errors.New("library: malformed cursor")
)

// Format is the format of an imported document.
type Format int

const (
	// FormatUnspecified is not a format; imports with it are rejected.
	FormatUnspecified Format = iota
	// FormatHFDailyJSON is the Hugging Face daily papers API response, in
	// its 2024 or its 2026 shape.
	FormatHFDailyJSON
	// FormatArxivAtom is an arXiv API (export.arxiv.org/api/query) Atom
	// feed.
	FormatArxivAtom
)

// String names the format as the API does.
func (f Format) String() string {
	switch f {
	case FormatHFDailyJSON:
		return "PAPER_FORMAT_HF_DAILY_JSON"
	case FormatArxivAtom:
		return "PAPER_FORMAT_ARXIV_ATOM"
	}
	return "PAPER_FORMAT_UNSPECIFIED"
}

// ImportResult says what an import or upsert stored.
type ImportResult struct {
	// Created counts papers not stored before; Updated those refreshed.
	Created, Updated int
	// IDs are the document's paper ids in document order, each once.
	IDs []string
}

// Store keeps papers by arXiv id. All papers of one call are written
// together or not at all.
type Store interface {
	// UpsertPapers stores papers (unique ids, FeaturedDay set), merging
	// each into its stored version with paper.Merge, all or none, and
	// reports how many were not stored before.
	UpsertPapers(ctx context.Context, papers []paper.Paper) (created int, err error)
	// GetPaper returns the paper with a normalised id, or ErrNotFound.
	GetPaper(ctx context.Context, id string) (paper.Paper, error)
	// DeletePaper removes a paper and its index entries, or returns
	// ErrNotFound.
	DeletePaper(ctx context.Context, id string) error
	// ListPapersByDay returns up to limit papers featured on day
	// ("YYYY-MM-DD"), or on any day when day is "" (newest day first);
	// within a day most upvoted first, ties by id. next is "" after the
	// last page; a cursor the store did not issue (or issued for another
	// day) is ErrBadCursor.
	ListPapersByDay(ctx context.Context, day string, limit int, cursor string) (papers []paper.Paper, next string, err error)
}
