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

// ErrRejected is wrapped by a Conn.Send error when the relay refused the
// message permanently (a 5xx reply): it must not be retried.
var ErrRejected = errors.New("delivery: relay rejected the message")

// Entry is one queue entry: a reference from a lane's stream in one
// partition to a message record.
type Entry struct {
	Partition int
	Lane      queue.Lane
	// StreamID is the entry's id in its stream.
	StreamID string
	// MessageID is the message the entry refers to; empty for an entry the
	// store could not read (it is acknowledged and dropped).
	MessageID string
}

// Queue is what the Dispatcher needs from the store. Every method that
// changes a record is atomic, and MarkSent and MarkDead are idempotent: a
// message already finished is only acknowledged again.
type Queue interface {
	// Read delivers up to count new entries of the partition to consumer,
	// transactional entries first, waiting up to block for some to arrive.
	Read(ctx context.Context, partition int, consumer string, count int, block time.Duration) ([]Entry, error)
	// Claim takes over up to count entries of one lane that were delivered
	// to some consumer and not acknowledged for at least minIdle, scanning
	// from cursor ("0-0" for the start). It returns the next cursor ("0-0"
	// when the scan wrapped).
	Claim(ctx context.Context, partition int, lane queue.Lane, consumer string, minIdle time.Duration, cursor string, count int) ([]Entry, string, error)
	// Extend resets the idle time of entries consumer still owns, so no
	// other consumer claims work that is in progress.
	Extend(ctx context.Context, consumer string, entries []Entry) error
	// GetMessage returns a message record, or queue.ErrNotFound.
	GetMessage(ctx context.Context, id string) (queue.Message, error)
	// GetContent returns a stored content, or queue.ErrNotFound.
	GetContent(ctx context.Context, id string) (queue.Content, error)
	// StartAttempt counts a delivery attempt and returns the new count.
	StartAttempt(ctx context.Context, e Entry, at time.Time) (int, error)
	// MarkSent records the delivery, counts it, acknowledges the entry and
	// lets the record expire in 30 days, all at once.
	MarkSent(ctx context.Context, e Entry, at time.Time) error
	// MarkDead records a permanent failure, counts it, acknowledges the
	// entry and lets the record expire in 30 days, all at once.
	MarkDead(ctx context.Context, e Entry, reason string, at time.Time) error
	// Retry records a temporary failure and leaves the entry pending, its
	// idle time reset, so it is claimed again after the retry delay.
	Retry(ctx context.Context, e Entry, consumer, reason string, at time.Time) error
	// Ack acknowledges an entry that needs no delivery.
	Ack(ctx context.Context, e Entry) error
}

// Mail is one message ready for the relay.
type Mail struct {
	// MessageID is the message id; the mailer makes the Message-ID header
	// from it.
	MessageID string
	To        string
	Lane      queue.Lane
	mailtemplate.Rendered
	// ListUnsubscribeURL is empty, https (one-click) or http to a loopback
	// host.
	ListUnsubscribeURL string
}

// Mailer opens connections to the relay.
type Mailer interface {
	// Dial opens a connection ready to send.
	Dial(ctx context.Context) (Conn, error)
}

// Conn is one connection to the relay, used by one worker at a time.
type Conn interface {
	// Send sends one message. nil means the relay accepted it (the 250 after
	// DATA); an error wrapping ErrRejected means it refused it permanently;
	// any other error is temporary or a broken connection. When ctx is done
	// the send is cut off (the connection is closed).
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
}

type noMetrics struct{}

func (noMetrics) Sent(queue.Lane)            {}
func (noMetrics) Dead(queue.Lane)            {}
func (noMetrics) Retried(queue.Lane)         {}
func (noMetrics) SendDuration(time.Duration) {}
func (noMetrics) DialFailed()                {}
