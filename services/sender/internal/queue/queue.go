// Package queue is sender's domain: messages, lanes and states, contents and
// their variables, the validation of everything a caller hands in, and the
// Service behind the RPCs. Delivery (the dispatcher and its workers) is
// internal/delivery; the {{variable}} engine is internal/mailtemplate.
//
// It imports neither gRPC nor Redis: the store is the small interface
// declared here (Store), implemented by internal/redisstore.
package queue

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
)

// Errors the Service and Dispatcher report.
var (
	// ErrNotFound is returned for a message or content id that is not stored.
	ErrNotFound = errors.New("queue: not found")
	// ErrKeyCollision is returned when two different idempotency keys map to
	// the same message id (a 128-bit hash collision: in practice never).
	ErrKeyCollision = errors.New("queue: idempotency key collides with another key")
)

// Lane separates urgent transactional mail from bulk mail.
type Lane uint8

// The lanes. The zero Lane is invalid.
const (
	LaneTransactional Lane = iota + 1
	LaneBulk
)

// Lanes lists the lanes in the order they are served: transactional first.
func Lanes() []Lane { return []Lane{LaneTransactional, LaneBulk} }

// String is the lane's short name, used in Redis keys, counters and metrics.
func (l Lane) String() string {
	switch l {
	case LaneTransactional:
		return "tx"
	case LaneBulk:
		return "bulk"
	}
	return "invalid"
}

// ParseLane is the inverse of Lane.String.
func ParseLane(s string) (Lane, bool) {
	switch s {
	case "tx":
		return LaneTransactional, true
	case "bulk":
		return LaneBulk, true
	}
	return 0, false
}

// Valid reports whether l is one of the lanes.
func (l Lane) Valid() bool { return l == LaneTransactional || l == LaneBulk }

// State is where a message is in delivery.
type State uint8

// The states. A message starts QUEUED and ends SENT, DEAD or CANCELLED;
// RETRYING and UNKNOWN wait for a delayed retry. SENDING is never stored:
// it is reported while a worker holds the message's delivery lease.
const (
	StateQueued State = iota + 1
	StateSent
	StateDead
	StateRetrying
	StateUnknown
	StateCancelled
	StateSending
)

// stateNames are the stored names, indexed by State.
func stateNames() [StateSending + 1]string {
	return [...]string{
		StateQueued: "QUEUED", StateSent: "SENT", StateDead: "DEAD", StateRetrying: "RETRYING",
		StateUnknown: "UNKNOWN", StateCancelled: "CANCELLED", StateSending: "SENDING",
	}
}

// String is the state's name as stored.
func (s State) String() string {
	if names := stateNames(); int(s) < len(names) && names[s] != "" {
		return names[s]
	}
	return "INVALID"
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) {
	for st, name := range stateNames() {
		if name != "" && name == s {
			return State(st), true
		}
	}
	return 0, false
}

// Done reports whether the message needs no more delivery attempts.
func (s State) Done() bool { return s == StateSent || s == StateDead || s == StateCancelled }

// Content is a message template: subject and bodies with {{variables}}.
type Content struct {
	Subject string
	HTML    string
	Text    string
}

// ID is the content's address: the lowercase hex SHA-256 of an unambiguous
// encoding of its three fields, so equal content always gets the same id
// and different content never does.
func (c Content) ID() string {
	h := sha256.New()
	h.Write([]byte("paperroute/sender content v1\x00"))
	for _, field := range []string{c.Subject, c.HTML, c.Text} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(field)))
		h.Write(n[:])
		h.Write([]byte(field))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Variables lists the distinct {{variables}} the content uses, sorted.
func (c Content) Variables() []string {
	return c.Compile().Names()
}

// Compile parses the content's templates.
func (c Content) Compile() *mailtemplate.Compiled {
	return mailtemplate.Compile(c.Subject, c.HTML, c.Text)
}

// Message is one queued message and its delivery status.
type Message struct {
	// ID is MessageID(IdempotencyKey).
	ID             string
	IdempotencyKey string
	Recipient      string
	Lane           Lane
	// ContentID names the stored Content (inline content is stored too).
	ContentID          string
	Variables          map[string]string
	ListUnsubscribeURL string
	// TraceParent is the W3C traceparent of the call that queued the
	// message, so its send joins that trace; empty when it was not traced.
	// The store sets it from the Enqueue context.
	TraceParent string

	State     State
	Attempts  int
	LastError string
	Created   time.Time
	Updated   time.Time
	// Sent is when the relay accepted the message; zero until SENT.
	Sent time.Time
	// NextAttempt is when a RETRYING or UNKNOWN message is tried again.
	NextAttempt time.Time
	// Reply is the relay's answer to the final dot (SENT).
	Reply string
	// UnknownOutcomes counts attempts whose outcome was unknown.
	UnknownOutcomes int
}

// MessageID derives a message's id from its idempotency key: the lowercase
// hex of the first 16 bytes of SHA-256(key), 32 characters. It is stable, so
// the same key always names the same record, and it is also the local part
// of the Message-ID header.
func MessageID(idempotencyKey string) string {
	sum := sha256.Sum256([]byte(idempotencyKey))
	return hex.EncodeToString(sum[:16])
}

// Partition maps a message id to one of n partitions: the first 4 bytes of
// the id (big endian) modulo n. The partition count must stay fixed for the
// life of a queue, or existing records and entries would be looked up in the
// wrong partition.
func Partition(id string, n int) int {
	if n <= 1 || len(id) < 8 {
		return 0
	}
	b, err := hex.DecodeString(id[:8])
	if err != nil {
		return 0
	}
	return int(binary.BigEndian.Uint32(b) % uint32(n))
}

// ValidMessageID reports whether s has the shape of a message id.
func ValidMessageID(s string) bool { return lowerHex(s, 32) }

// lowerHex reports whether s is n lowercase hexadecimal digits: the shape
// of message ids (16 random bytes) and content ids (a SHA-256).
func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// LaneStats describes one lane summed over its partitions.
type LaneStats struct {
	Lane Lane
	// Waiting is the number of entries no worker has read yet.
	Waiting int64
	// Pending is the number of entries read and not yet acknowledged.
	Pending int64
	// Sent, Dead and Cancelled count finished messages since the queue was
	// created.
	Sent      int64
	Dead      int64
	Cancelled int64
	// Retrying counts messages waiting for a delayed retry.
	Retrying int64
	// OldestAge is the age of the oldest unacknowledged entry.
	OldestAge time.Duration
	// Rates are the lane's recent delivery rates, shortest window first; a
	// window is absent until the counters were sampled that long ago.
	Rates []Rate
}

// RateWindows are the nominal windows of LaneStats.Rates.
var RateWindows = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}

// Rate is a lane's delivery rate over a recent window.
type Rate struct {
	// Window is the span measured, at least the nominal window.
	Window time.Duration
	// SentPerMinute, DeadPerMinute and CancelledPerMinute are the finished
	// messages per minute over Window.
	SentPerMinute      float64
	DeadPerMinute      float64
	CancelledPerMinute float64
}

// DeadLetterCounts are the dead letters a queue holds, both lanes.
type DeadLetterCounts struct {
	// Dead is the dead messages RetryDeadLetters can queue again.
	Dead int64
	// MissingRecords is the entries set aside because their message
	// record was missing.
	MissingRecords int64
}

// Pause is the kill switch's state.
type Pause struct {
	Paused bool
	Reason string
	Since  time.Time
}

// ListFilter selects message records; zero fields match everything.
type ListFilter struct {
	State     State
	Lane      Lane
	Recipient string
	// CreatedAfter and CreatedBefore bound the creation time: at or after
	// CreatedAfter, before CreatedBefore. Creation times are kept in
	// milliseconds, so a store compares with CreatedAfterMs and
	// CreatedBeforeMs.
	CreatedAfter  time.Time
	CreatedBefore time.Time
}

// Match reports whether m passes the filter.
func (f ListFilter) Match(m Message) bool {
	ms := m.Created.UnixMilli()
	return (f.State == 0 || m.State == f.State) && (f.Lane == 0 || m.Lane == f.Lane) &&
		(f.Recipient == "" || m.Recipient == f.Recipient) &&
		(f.CreatedAfter.IsZero() || ms >= f.CreatedAfterMs()) &&
		(f.CreatedBefore.IsZero() || ms <= f.CreatedBeforeMs())
}

// CreatedAfterMs is the earliest creation time in Unix milliseconds that
// matches (inclusive); 0 without a lower bound.
func (f ListFilter) CreatedAfterMs() int64 {
	if f.CreatedAfter.IsZero() {
		return 0
	}
	return ceilMilli(f.CreatedAfter)
}

// CreatedBeforeMs is the latest creation time in Unix milliseconds that
// matches (inclusive); math.MaxInt64 without an upper bound.
func (f ListFilter) CreatedBeforeMs() int64 {
	if f.CreatedBefore.IsZero() {
		return math.MaxInt64
	}
	return ceilMilli(f.CreatedBefore) - 1
}

// ceilMilli is t in Unix milliseconds, rounded up.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// ListCursor is a position in the newest-first listing: the last message
// returned (its creation time and id).
type ListCursor struct {
	CreatedMs int64
	ID        string
}

// Encode is the page token of the cursor.
func (c ListCursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedMs, 10) + ":" + c.ID))
}

// DecodeListCursor parses a page token.
func DecodeListCursor(token string) (ListCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return ListCursor{}, false
	}
	ms, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || !ValidMessageID(id) {
		return ListCursor{}, false
	}
	return ListCursor{CreatedMs: n, ID: id}, true
}
