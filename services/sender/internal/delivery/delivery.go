// Package delivery is sender's dispatcher: per partition a reader of new
// queue entries and a reclaimer of stale ones, a pool of workers that each
// keep one connection to the relay, the set of entries in flight, and the
// retry policy. It sees the queue and the relay only through the small
// interfaces declared here (Queue, Mailer, Conn, Metrics), implemented by
// internal/redisstore, internal/smtpmail and internal/metrics.
package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Errors a Conn.Send wraps to classify a failure. Any other error is
// temporary (a 4xx reply or a broken connection before the final dot):
// retried with exponential backoff.
var (
	// ErrRejected: the relay refused the message permanently (5xx). It is
	// dead-lettered and the subscriber service is told.
	ErrRejected = errors.New("delivery: relay rejected the message")
	// ErrThrottled: the relay asks us to slow down (421, 451, 454). The
	// relay is slowed as a whole and the attempt is not counted.
	ErrThrottled = errors.New("delivery: relay throttled")
	// ErrOutcomeUnknown: the final dot may have reached the relay but no
	// reply came (timeout, broken connection): the relay may have the
	// message.
	ErrOutcomeUnknown = errors.New("delivery: outcome unknown after the final dot")
)

// Entry is one queue entry: a reference from a lane's stream in one
// partition to a message record.
type Entry struct {
	Partition int
	Lane      queue.Lane
	// StreamID is the entry's id in its stream.
	StreamID string
	// MessageID is the message the entry refers to; empty for an entry the
	// store could not read.
	MessageID string
}

// LeaseResult is the answer to a lease request.
type LeaseResult int

// The lease results.
const (
	// LeaseAcquired: the caller holds the delivery lease and may send.
	LeaseAcquired LeaseResult = iota + 1
	// LeaseHeld: another consumer holds the lease (it is sending the
	// message now); leave the entry alone.
	LeaseHeld
	// LeaseSent: the message's sent mark exists; acknowledge only.
	LeaseSent
)

// LeaseRequest asks for a message's delivery lease.
type LeaseRequest struct {
	// Consumer takes the lease, for Duration (also when it holds an older
	// one).
	Consumer string
	Duration time.Duration
	// At is when the attempt the lease is for starts.
	At time.Time
	// Recipient, when set, is read for cancels together with the lease
	// (Lease.CancelledSince).
	Recipient string
}

// Lease is the answer to a LeaseRequest.
type Lease struct {
	Result LeaseResult
	// Token names the lease (LeaseAcquired only): it is stored in the
	// mark and fences out every older lease.
	Token string
	// Attempts is the message's attempt count including the one this
	// lease was taken for (LeaseAcquired only).
	Attempts int
	// CancelledSince is when mail of the entry's lane to the request's
	// Recipient was last cancelled (zero: never, or no Recipient), read in
	// the same round trip as the lease and no earlier than the lease was
	// taken on a single Redis.
	CancelledSince time.Time
}

// SentAndLease is the answer to Queue.MarkSentAndLease.
type SentAndLease struct {
	// SentErr is the MarkSent part's error.
	SentErr error
	// Lease and LeaseErr are the Lease part's answer.
	Lease    Lease
	LeaseErr error
}

// Retry describes a delayed retry.
type Retry struct {
	// State is StateRetrying or StateUnknown.
	State  queue.State
	Reason string
	// Due is when the message goes back into its stream.
	Due time.Time
	// Refund takes back the attempt (throttling is not the message's fault).
	Refund bool
}

// Queue is what the Dispatcher needs from the store. Every method that
// changes a record is atomic and idempotent; the Mark methods record the
// outcome, acknowledge the entry and release or set the delivery mark in
// one step.
type Queue interface {
	// Read delivers up to count new entries of the partition to consumer,
	// transactional entries first, waiting up to block for some to arrive.
	Read(ctx context.Context, partition int, consumer string, count int, block time.Duration) ([]Entry, error)
	// Claim takes over up to count entries of one lane that were delivered
	// to some consumer and not acknowledged for at least minIdle, scanning
	// from cursor ("0-0" for the start). It returns the next cursor.
	Claim(ctx context.Context, partition int, lane queue.Lane, consumer string, minIdle time.Duration, cursor string, count int) ([]Entry, string, error)
	// Extend resets the idle time of entries consumer still owns, so no
	// other consumer claims work that is in progress.
	Extend(ctx context.Context, consumer string, entries []Entry) error
	// GetMessage returns a message record, or queue.ErrNotFound.
	GetMessage(ctx context.Context, id string) (queue.Message, error)
	// GetContent returns a stored content, or queue.ErrNotFound.
	GetContent(ctx context.Context, id string) (queue.Content, error)
	// Lease takes the message's delivery lease and, when it is acquired,
	// counts a delivery attempt, in one atomic step. A missing record is
	// queue.ErrNotFound. When the lease was acquired but the recipient's
	// cancels could not be read (on a Cluster they live on another node,
	// which can be down), it returns the acquired Lease together with the
	// error: the caller must not send, and gives lease and attempt back.
	Lease(ctx context.Context, e Entry, r LeaseRequest) (Lease, error)
	// RenewLease extends the lease token by d, also after it expired if no
	// other lease was taken since; false means it was lost.
	RenewLease(ctx context.Context, e Entry, token string, d time.Duration) (bool, error)
	// MarkSent sets the sent mark, records SENT with the relay's reply,
	// counts it and acknowledges the entry, all at once.
	MarkSent(ctx context.Context, e Entry, reply string, at time.Time) error
	// MarkSentAndLease is MarkSent of e and Lease of next in one round
	// trip: a worker records the message it sent and takes the lease of
	// its next one together. Each part succeeds or fails on its own.
	MarkSentAndLease(ctx context.Context, e Entry, reply string, at time.Time, next Entry, r LeaseRequest) SentAndLease
	// MarkDead records DEAD with reason, counts it, acknowledges the entry
	// and releases the lease token ("" if none); report also queues a delivery failure
	// report for the subscriber service in the same step.
	MarkDead(ctx context.Context, e Entry, token, reason string, report bool, at time.Time) error
	// MarkCancelled records CANCELLED, counts it, acknowledges the entry
	// and releases the lease token; it takes back the attempt the lease
	// counted (nothing was attempted).
	MarkCancelled(ctx context.Context, e Entry, token string, at time.Time) error
	// Retry records the failure, schedules the message to go back into its
	// stream at r.Due, acknowledges the entry and releases the lease token.
	Retry(ctx context.Context, e Entry, token string, r Retry, at time.Time) error
	// DeadLetterMissing records an entry whose message record is missing
	// (or unreadable) in the partition's dead-letter stream with reason and
	// acknowledges it.
	DeadLetterMissing(ctx context.Context, e Entry, reason string, at time.Time) error
	// Ack acknowledges an entry that needs no delivery.
	Ack(ctx context.Context, e Entry) error
	// GetPause returns the kill switch's state.
	GetPause(ctx context.Context) (queue.Pause, error)
	// PromoteDue moves up to max delayed retries of the partition that are
	// due at now back into their streams; it returns how many.
	PromoteDue(ctx context.Context, partition int, now time.Time, max int) (int, error)
	// Maintain trims acknowledged entries below the oldest unacknowledged
	// one from the partition's streams and removes consumers other than
	// self that own nothing and were idle for staleAfter.
	Maintain(ctx context.Context, partition int, self string, staleAfter time.Duration) error
}

// Mail is one message ready for the relay.
type Mail struct {
	// MessageID is the message id; the mailer makes the Message-ID header
	// from it.
	MessageID string
	To        string
	Lane      queue.Lane
	// Content and Variables are the message's template and values. A
	// mailer fills them in itself (smtpmail splices the values into the
	// content it encoded once); Render gives the filled-in text. When
	// Content is nil, Rendered holds the text already filled in.
	Content   *mailtemplate.Compiled
	Variables map[string]string
	mailtemplate.Rendered
	// ListUnsubscribeURL is empty, https (one-click) or http to a loopback
	// host.
	ListUnsubscribeURL string
	// TraceParent is the W3C traceparent stored with the message (see
	// queue.Message), for a Mailer that traces sends; empty when untraced.
	TraceParent string
}

// Render returns the message's subject and bodies with the variables
// filled in.
func (m *Mail) Render() mailtemplate.Rendered {
	if m.Content == nil {
		return m.Rendered
	}
	return m.Content.Render(m.Variables)
}

// Replier is implemented by a Conn that can tell the relay's reply to the
// last message's final dot (recorded with SENT).
type Replier interface {
	LastReply() string
}

// Mailer opens connections to the relay.
type Mailer interface {
	// Dial opens a connection ready to send.
	Dial(ctx context.Context) (Conn, error)
}

// Envelope is what a worker knows of its next message before it asks for
// a connection: its id and recipient.
type Envelope struct {
	MessageID string
	To        string
}

// EnvelopeDialer is implemented by a Mailer that can prepare a connection
// for one message when it knows the message's envelope in advance
// (smtpmail.Pool writes it behind another worker's message, saving a round
// trip). A Conn from DialFor is bound to that message: the caller sends
// env's message on it, or nothing, and closes it either way. Such a Conn
// is not Reusable, so the worker closes it after the message (also when
// it does not send it).
type EnvelopeDialer interface {
	DialFor(ctx context.Context, env Envelope) (Conn, error)
}

// DialFor dials m for the message of env: with m's DialFor when m
// implements EnvelopeDialer, else with Dial.
func DialFor(ctx context.Context, m Mailer, env Envelope) (Conn, error) {
	if ed, ok := m.(EnvelopeDialer); ok {
		return ed.DialFor(ctx, env)
	}
	return m.Dial(ctx)
}

// Conn is one connection to the relay, used by one worker at a time.
type Conn interface {
	// Send sends one message. nil means the relay accepted it (the 250 after
	// DATA); errors are classified by wrapping ErrRejected, ErrThrottled or
	// ErrOutcomeUnknown (anything else is temporary). When ctx is done the
	// send is cut off; no byte should be written or read after ctx's
	// deadline (the lease's end), so a process that stalled past its lease
	// cannot finish a send that another one took over.
	Send(ctx context.Context, m *Mail) error
	// Reusable reports whether the connection can carry another message.
	Reusable() bool
	// Close ends the session.
	Close() error
}

// Metrics is what the dispatcher reports. The prometheus implementation is
// internal/metrics; nil means nothing is recorded.
type Metrics interface {
	// Sent counts a message the relay accepted.
	Sent(lane queue.Lane)
	// Dead counts a message that failed permanently.
	Dead(lane queue.Lane)
	// Retried counts a temporary failure that will be retried.
	Retried(lane queue.Lane)
	// SendDuration observes one SMTP transaction, whatever its outcome.
	SendDuration(d time.Duration)
	// DialFailed counts a failed attempt to connect to the relay.
	DialFailed()
	// Cancelled counts a message not sent because its recipient was
	// cancelled.
	Cancelled(lane queue.Lane)
	// OutcomeUnknown counts a send whose outcome is unknown.
	OutcomeUnknown(lane queue.Lane)
	// Throttled counts a throttling reply from the relay.
	Throttled()
	// MissingRecord counts an entry without a message record (an alarm:
	// Redis lost data, e.g. evicted keys).
	MissingRecord()
	// LeaseLost counts a send given up because the lease was lost.
	LeaseLost()
}

type noMetrics struct{}

func (noMetrics) Sent(queue.Lane)            {}
func (noMetrics) Dead(queue.Lane)            {}
func (noMetrics) Retried(queue.Lane)         {}
func (noMetrics) SendDuration(time.Duration) {}
func (noMetrics) DialFailed()                {}
func (noMetrics) Cancelled(queue.Lane)       {}
func (noMetrics) OutcomeUnknown(queue.Lane)  {}
func (noMetrics) Throttled()                 {}
func (noMetrics) MissingRecord()             {}
func (noMetrics) LeaseLost()                 {}

// RateLimiter spaces sends out to the configured rates, shared by all
// replicas (GCRA in Redis). Implemented by internal/redisstore.
type RateLimiter interface {
	// Reserve takes one send from the limits, or says how long to wait
	// before asking again.
	Reserve(ctx context.Context) (wait time.Duration, err error)
}
