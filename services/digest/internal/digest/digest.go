// Package digest is the digest service's behaviour: digest runs that render an edition once and hand one message per due
// subscriber to the sender.
//
// It declares the small interfaces it needs (PaperStore, RunStore,
// Subscribers, Sender) and imports neither gRPC nor Redis.
package digest

import (
	"context"
	"errors"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Errors callers can test for with errors.Is.
var (
	// ErrNotFound means the run does not exist (or has expired).
	ErrNotFound = errors.New("digest: not found")
	// ErrShuttingDown means the service is stopping and starts no new runs.
	ErrShuttingDown = errors.New("digest: the service is shutting down")
	// ErrBadCursor is returned by a PaperStore for a cursor it did not
	// issue.
	ErrBadCursor = errors.New("digest: malformed cursor")
	// ErrRejected is returned by a Sender when it refuses a batch because a
	// message in it is invalid (the whole batch is refused).
	ErrRejected = errors.New("digest: the sender rejected the batch")
)

// RunState is where a digest run is.
type RunState int

const (
	// RunRunning means the run is still working through due subscribers.
	RunRunning RunState = iota + 1
	// RunSucceeded means every due subscriber was handled; the counts say
	// how (a subscriber whose digest could not be queued counts as failed).
	RunSucceeded
	// RunFailed means the run stopped early; Error says why. Running the
	// edition again is safe: the sender never sends a key twice.
	RunFailed
)

// String returns the state's name.
func (s RunState) String() string {
	switch s {
	case RunRunning:
		return "RUNNING"
	case RunSucceeded:
		return "SUCCEEDED"
	case RunFailed:
		return "FAILED"
	}
	return "UNSPECIFIED"
}

// Counts are a run's progress counters.
type Counts struct {
	// Due counts subscribers due this edition, so far.
	Due int64
	// Queued counts digests handed to the sender by this run.
	Queued int64
	// Duplicate counts digests the sender already had for this edition.
	Duplicate int64
	// Skipped counts subscribers with nothing to send.
	Skipped int64
	// Failed counts subscribers whose digest could not be queued.
	Failed int64
}

// Add returns the sum of c and d.
func (c Counts) Add(d Counts) Counts {
	return Counts{
		Due:       c.Due + d.Due,
		Queued:    c.Queued + d.Queued,
		Duplicate: c.Duplicate + d.Duplicate,
		Skipped:   c.Skipped + d.Skipped,
		Failed:    c.Failed + d.Failed,
	}
}

// Run is one run of one edition.
type Run struct {
	// ID is a ULID.
	ID string
	// Edition is the edition date, "YYYY-MM-DD".
	Edition string
	State   RunState
	DryRun  bool
	Counts  Counts
	// PaperIDs are the edition's papers in mail order, once chosen.
	PaperIDs   []string
	CreateTime time.Time
	// FinishTime is zero while the run is RUNNING.
	FinishTime time.Time
	// Error is a short operator-facing reason: why the run FAILED, or the
	// first enqueue failure of a run that SUCCEEDED with failures.
	Error string
}

// PaperStore stores papers by arXiv id.
type PaperStore interface {
	// UpsertPapers stores papers (unique ids) all or none, replacing the
	// stored version of each, and reports how many were not stored before.
	UpsertPapers(ctx context.Context, papers []paper.Paper) (created int, err error)
	// ListPapers returns up to limit papers, most upvoted first, ties by id,
	// starting after cursor ("" for the start). next is "" after the last
	// page. A cursor the store did not issue is ErrBadCursor.
	ListPapers(ctx context.Context, limit int, cursor string) (papers []paper.Paper, next string, err error)
}

// RunStore stores digest runs.
type RunStore interface {
	// CreateRun stores a new run.
	CreateRun(ctx context.Context, run Run) error
	// GetRun returns a run, or ErrNotFound.
	GetRun(ctx context.Context, id string) (Run, error)
	// SetRunPapers records the edition's papers.
	SetRunPapers(ctx context.Context, id string, paperIDs []string) error
	// AddRunCounts adds to the run's counters atomically, so readers see
	// progress.
	AddRunCounts(ctx context.Context, id string, delta Counts) error
	// FinishRun sets the final state, error text and finish time.
	FinishRun(ctx context.Context, id string, state RunState, errText string, at time.Time) error
}

// DueSubscriber is a subscriber due a digest.
type DueSubscriber struct {
	ID    string
	Email string
	// UnsubscribeURL is the signed one-click unsubscribe URL.
	UnsubscribeURL string
}

// Subscribers finds the subscribers due a digest.
type Subscribers interface {
	// ListDue returns one page of the subscribers due at dueTime; next is ""
	// after the last page.
	ListDue(ctx context.Context, dueTime time.Time, pageSize int, pageToken string) (subs []DueSubscriber, next string, err error)
}

// Content is a sender template: subject and bodies with {{variables}}.
type Content struct {
	Subject, HTML, Text string
}

// Message is one digest to queue on the bulk lane.
type Message struct {
	// Key is the idempotency key: the sender never sends a key twice.
	Key       string
	Recipient string
	ContentID string
	// Variables fill the content's {{variables}} for this recipient.
	Variables          map[string]string
	ListUnsubscribeURL string
}

// EnqueueResult is the sender's answer for one message.
type EnqueueResult struct {
	Key string
	// Duplicate is true when the key was queued before; nothing new was
	// queued.
	Duplicate bool
}

// Sender hands mail to the sender service.
type Sender interface {
	// PutContent stores a template and returns its content id.
	PutContent(ctx context.Context, c Content) (contentID string, err error)
	// Enqueue queues messages on the bulk lane, all or none; results are in
	// request order. A batch refused for an invalid message is ErrRejected.
	Enqueue(ctx context.Context, msgs []Message) ([]EnqueueResult, error)
}
