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
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
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
	// ErrNothingToPreview means no paper is in the window: there is no
	// digest to show.
	ErrNothingToPreview = errors.New("digest: no papers in the window to preview")
	// ErrSubscriberNotFound means the subscriber service knows no such
	// subscriber (PreviewSubscriber).
	ErrSubscriberNotFound = errors.New("digest: no such subscriber")
)

// PreferenceSource finds one subscriber's preferences: the subscriber
// service, for an operator's preview of what that reader would get.
type PreferenceSource interface {
	// Preferences returns the subscriber's topics, keywords and frequency,
	// or ErrSubscriberNotFound.
	Preferences(ctx context.Context, subscriberID string) (PreviewPrefs, error)
}

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
	// Skipped counts subscribers with nothing new to send: every paper
	// that qualifies was sent to them in an earlier edition.
	Skipped int64
	// Failed counts subscribers whose digest could not be queued.
	Failed int64
	// Missed counts subscribers of a caught-up slot whose local day had
	// already ended: that edition is not sent late.
	Missed int64
	// Contents counts the distinct renderings (paper lists) of the run.
	Contents int64
}

// Add returns the sum of c and d.
func (c Counts) Add(d Counts) Counts {
	return Counts{
		Due:       c.Due + d.Due,
		Queued:    c.Queued + d.Queued,
		Duplicate: c.Duplicate + d.Duplicate,
		Skipped:   c.Skipped + d.Skipped,
		Failed:    c.Failed + d.Failed,
		Missed:    c.Missed + d.Missed,
		Contents:  c.Contents + d.Contents,
	}
}

// Run is one run of one edition or one slot.
type Run struct {
	// ID is a ULID.
	ID string
	// Edition is the edition date, "YYYY-MM-DD", of an edition run; empty
	// for a slot run, whose subscribers each get their own local edition.
	Edition string
	// Slot is the start of the 15-minute slot of a slot run (the
	// scheduler's runs); zero for an edition run.
	Slot   time.Time
	State  RunState
	DryRun bool
	Counts Counts
	// PaperIDs are the papers of the run's first rendering, in mail order
	// (readers with other topics get other lists).
	PaperIDs   []string
	CreateTime time.Time
	// FinishTime is zero while the run is RUNNING.
	FinishTime time.Time
	// Scheduled is true for the scheduler's runs: a subscriber of a slot
	// caught up after their local day ended is counted missed, not mailed.
	// An operator's slot run mails them (the operator asked for it). Not
	// stored.
	Scheduled bool
	// HeartbeatTime is when the process running it last said it is alive;
	// a RUNNING run whose heartbeat stops is marked FAILED.
	HeartbeatTime time.Time
	// Error is a short operator-facing reason: why the run FAILED, or the
	// first enqueue failure of a run that SUCCEEDED with failures.
	Error string
}

// PaperStore stores papers by arXiv id.
type PaperStore interface {
	// WindowPapers returns every paper featured (ranking.FeaturedAt) in
	// [from, to], in no particular order.
	WindowPapers(ctx context.Context, from, to time.Time) ([]paper.Paper, error)
	// UpsertPapers stores papers (unique ids) all or none, merging each
	// into its stored version (paper.Merge), and reports how many were not
	// stored before.
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
	// Heartbeat records that the run's process is alive at at.
	Heartbeat(ctx context.Context, id string, at time.Time) error
	// FailIfStale marks a RUNNING run whose heartbeat is older than before
	// FAILED with errText at at, and reports whether it did.
	FailIfStale(ctx context.Context, id string, before time.Time, errText string, at time.Time) (bool, error)
	// ListRuns returns up to limit runs, newest first, after cursor (""
	// for the start); next is "" after the last page. A cursor the store
	// did not issue is ErrBadCursor.
	ListRuns(ctx context.Context, limit int, cursor string) (runs []Run, next string, err error)
}

// SentRecord is what one subscriber was sent in one edition.
type SentRecord struct {
	SubscriberID string
	Edition      string
	PaperIDs     []string
}

// SentStore is the never-resend memory: which papers each subscriber was
// sent, for a bounded time.
type SentStore interface {
	// SentPapers returns, for each of subs, the ids of the papers sent to
	// them since since in editions other than except[subscriber] (a run
	// again of the same edition must pick the same papers).
	SentPapers(ctx context.Context, subs []string, except map[string]string, since time.Time) (map[string]map[string]bool, error)
	// RecordSent remembers recs at at and forgets what is older than keep.
	RecordSent(ctx context.Context, recs []SentRecord, at time.Time, keep time.Duration) error
}

// DueSubscriber is a subscriber due a digest.
type DueSubscriber struct {
	ID    string
	Email string
	// UnsubscribeURL is the signed one-click unsubscribe URL.
	UnsubscribeURL string
	// ManageURL is the signed link to the preferences page; empty when the
	// subscriber service gives none (the footer then links the
	// unsubscribe page, which offers the preferences too).
	ManageURL string
	// Topics and Keywords are what the reader asked for.
	Topics   []string
	Keywords []string
	// Schedule is when the reader wants the digest.
	Schedule schedule.Prefs
}

// Subscribers finds the subscribers due a digest.
type Subscribers interface {
	// ListDue returns one page of the subscribers due at dueTime (zero:
	// now, by the subscriber service's clock); next is "" after the last
	// page.
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

// Card is one paper as an edition shows it.
type Card struct {
	Paper paper.Paper
	// Why says why the paper is in the edition, e.g.
	// "▲ 118 · 12 comments · matches: diffusion models".
	Why string
	// ForYou is true for a paper chosen for the reader's topics or
	// keywords; false for one that is only trending.
	ForYou bool
}

// Edition is what one digest mail shows.
type Edition struct {
	// Date is the edition's date; only the calendar day is shown.
	Date time.Time
	// Weekly is true for a weekly edition (the header says "this week").
	Weekly bool
	// Cards in the order they are shown (ForYou cards first); at least one.
	Cards []Card
}

// Rendered is a rendered digest: a sender template whose variables the
// sender fills per recipient.
type Rendered struct {
	Subject string
	HTML    string
	Text    string
	// Cards is how many of the edition's cards the mail shows, from the
	// start of the list (fewer than given when the size budget is hit).
	Cards int
}

// Renderer renders editions into mail.
type Renderer interface {
	// Render renders ed; it may drop cards from the end to stay within
	// the mail's size budget.
	Render(ed Edition) (Rendered, error)
}
