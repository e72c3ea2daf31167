package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/validation"
)

// Store keeps content, message records and the queue. Enqueue must be
// idempotent per message: a message whose id is already stored is not
// stored or queued again, whoever asks and however often.
type Store interface {
	// PutContents stores contents by id (or refreshes their expiry).
	PutContents(ctx context.Context, contents map[string]Content) error
	// ContentVariables returns the variables of each stored content id;
	// ids that are not stored are absent from the map. It writes nothing.
	ContentVariables(ctx context.Context, ids []string) (map[string][]string, error)
	// TouchContents refreshes the expiry of stored contents.
	TouchContents(ctx context.Context, ids []string) error
	// Enqueue stores and queues each message unless its id is already
	// stored; created[i] reports whether messages[i] was new.
	Enqueue(ctx context.Context, messages []Message) (created []bool, err error)
	// GetMessage returns a message record, or ErrNotFound.
	GetMessage(ctx context.Context, id string) (Message, error)
	// Stats returns the statistics of each lane.
	Stats(ctx context.Context) ([]LaneStats, error)
	// DeadLetters counts the dead letters held.
	DeadLetters(ctx context.Context) (DeadLetterCounts, error)
	// CancelRecipient records that mail to rcpt queued up to at is not to
	// be sent (bulk only unless allLanes).
	CancelRecipient(ctx context.Context, rcpt string, allLanes bool, at time.Time) error
	// SetPause sets or clears the kill switch; pausing keeps an earlier
	// pause's time. It returns the resulting state.
	SetPause(ctx context.Context, p Pause) (Pause, error)
	// GetPause returns the kill switch's state.
	GetPause(ctx context.Context) (Pause, error)
	// ListMessages returns up to limit records matching f, newest first,
	// after the cursor (nil: from the newest), scanning at most scan
	// records; next is the cursor to go on from (nil: no more).
	ListMessages(ctx context.Context, f ListFilter, after *ListCursor, limit, scan int) (msgs []Message, next *ListCursor, err error)
	// RetryDeadLetters queues up to limit dead messages (of lane, if set)
	// again and returns how many.
	RetryDeadLetters(ctx context.Context, lane Lane, limit int, at time.Time) (int, error)
}

// Listing and retry bounds.
const (
	DefaultPageSize     = 50
	MaxPageSize         = 500
	MaxRetryDeadLetters = 10000
)

// NewMessage is one message a caller asks to queue.
type NewMessage struct {
	IdempotencyKey string
	Recipient      string
	Lane           Lane
	// Exactly one of ContentID and Content is set.
	ContentID          string
	Content            *Content
	Variables          map[string]string
	ListUnsubscribeURL string
}

// EnqueueResult says what Enqueue did with one message.
type EnqueueResult struct {
	IdempotencyKey string
	MessageID      string
	// Duplicate is true when the key was queued before and nothing new was
	// queued.
	Duplicate bool
}

// Service implements sender's RPCs on a Store.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service on store. now is the clock (nil: time.Now).
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// PutContent validates and stores a template and returns its content id.
func (s *Service) PutContent(ctx context.Context, c Content) (string, error) {
	var errs validation.Errors
	checkContent(&errs, "content.", c)
	if err := errs.Err(); err != nil {
		return "", err
	}
	id := c.ID()
	if err := s.store.PutContents(ctx, map[string]Content{id: c}); err != nil {
		return "", fmt.Errorf("queue: put content: %w", err)
	}
	return id, nil
}

// Enqueue validates the whole batch (nothing is written if any message is
// invalid) and then queues every message whose idempotency key is new.
//
// Each message is queued atomically and idempotently, but the batch as a
// whole is not one transaction: if the store fails midway, some messages may
// be queued. Calling Enqueue again with the same batch is always safe and
// completes it (the ones already queued come back as duplicates).
func (s *Service) Enqueue(ctx context.Context, batch []NewMessage) ([]EnqueueResult, error) {
	switch {
	case len(batch) == 0:
		return nil, validation.Field("messages", "at least one message is required")
	case len(batch) > MaxBatch:
		return nil, validation.Field("messages", fmt.Sprintf("at most %d messages per call", MaxBatch))
	}
	var errs validation.Errors
	messages := make([]Message, len(batch))
	inline := map[string]Content{}
	needed := make([][]string, len(batch)) // variables each template needs
	var refs []string                      // content ids to look up
	now := s.now()
	for i, nm := range batch {
		p := fmt.Sprintf("messages[%d].", i)
		checkIdempotencyKey(&errs, p+"idempotency_key", nm.IdempotencyKey)
		rcpt := checkRecipient(&errs, p+"recipient", nm.Recipient)
		if !nm.Lane.Valid() {
			errs.Add(p+"lane", "must be LANE_TRANSACTIONAL or LANE_BULK")
		}
		checkVariables(&errs, p+"variables", nm.Variables)
		checkUnsubscribeURL(&errs, p+"list_unsubscribe_url", nm.ListUnsubscribeURL)
		if nm.Lane == LaneBulk && nm.ListUnsubscribeURL == "" {
			errs.Add(p+"list_unsubscribe_url", "is required for bulk mail (RFC 8058 one-click unsubscribe)")
		}
		contentID := nm.ContentID
		switch {
		case nm.Content != nil && nm.ContentID != "":
			errs.Add(p+"content_id", "set exactly one of content_id and content")
		case nm.Content != nil:
			before := errs.Len()
			checkContent(&errs, p+"content.", *nm.Content)
			if errs.Len() == before {
				contentID = nm.Content.ID()
				inline[contentID] = *nm.Content
				needed[i] = nm.Content.Variables()
			}
		case nm.ContentID == "":
			errs.Add(p+"content_id", "set exactly one of content_id and content")
		case !ValidContentID(nm.ContentID):
			errs.Add(p+"content_id", "must be a content id returned by PutContent (64 hex digits)")
		default:
			refs = append(refs, nm.ContentID)
		}
		messages[i] = Message{
			ID:                 MessageID(nm.IdempotencyKey),
			IdempotencyKey:     nm.IdempotencyKey,
			Recipient:          rcpt,
			Lane:               nm.Lane,
			ContentID:          contentID,
			Variables:          nm.Variables,
			ListUnsubscribeURL: nm.ListUnsubscribeURL,
			State:              StateQueued,
			Created:            now,
			Updated:            now,
		}
	}
	var stored map[string][]string
	if len(refs) > 0 {
		var err error
		if stored, err = s.store.ContentVariables(ctx, distinct(refs)); err != nil {
			return nil, fmt.Errorf("queue: enqueue: look up content: %w", err)
		}
	}
	for i, nm := range batch {
		p := fmt.Sprintf("messages[%d].", i)
		if nm.Content == nil && ValidContentID(nm.ContentID) {
			vars, ok := stored[nm.ContentID]
			if !ok {
				errs.Add(p+"content_id", "no content with this id (store it with PutContent first; content expires 30 days after last use)")
				continue
			}
			needed[i] = vars
		}
		checkMissingVariables(&errs, p+"variables", needed[i], nm.Variables)
	}
	if err := capViolations(errs.Err()); err != nil {
		return nil, err
	}

	if len(inline) > 0 {
		if err := s.store.PutContents(ctx, inline); err != nil {
			return nil, fmt.Errorf("queue: enqueue: store inline content: %w", err)
		}
	}
	if len(refs) > 0 {
		if err := s.store.TouchContents(ctx, distinct(refs)); err != nil {
			return nil, fmt.Errorf("queue: enqueue: refresh content: %w", err)
		}
	}
	created, err := s.store.Enqueue(ctx, messages)
	if err != nil {
		return nil, fmt.Errorf("queue: enqueue: %w", err)
	}
	results := make([]EnqueueResult, len(messages))
	for i, m := range messages {
		results[i] = EnqueueResult{IdempotencyKey: m.IdempotencyKey, MessageID: m.ID, Duplicate: !created[i]}
	}
	return results, nil
}

// GetMessage returns a message by id or by idempotency key: exactly one of
// them must be set.
func (s *Service) GetMessage(ctx context.Context, id, idempotencyKey string) (Message, error) {
	var errs validation.Errors
	switch {
	case id != "" && idempotencyKey != "":
		errs.Add("message_id", "set exactly one of message_id and idempotency_key")
	case id == "" && idempotencyKey == "":
		errs.Add("message_id", "set exactly one of message_id and idempotency_key")
	case id != "" && !ValidMessageID(id):
		errs.Add("message_id", "must be a message id returned by Enqueue (32 lowercase hex digits)")
	case idempotencyKey != "":
		checkIdempotencyKey(&errs, "idempotency_key", idempotencyKey)
		id = MessageID(idempotencyKey)
	}
	if err := errs.Err(); err != nil {
		return Message{}, err
	}
	m, err := s.store.GetMessage(ctx, id)
	if err != nil {
		return Message{}, fmt.Errorf("queue: get message %s: %w", id, err)
	}
	if idempotencyKey != "" && m.IdempotencyKey != idempotencyKey {
		return Message{}, fmt.Errorf("queue: get message %s: %w", id, ErrNotFound)
	}
	return m, nil
}

// Stats returns per-lane queue depth and delivery counters.
func (s *Service) Stats(ctx context.Context) ([]LaneStats, error) {
	st, err := s.store.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: stats: %w", err)
	}
	return st, nil
}

// DeadLetters counts the dead letters held, both lanes.
func (s *Service) DeadLetters(ctx context.Context) (DeadLetterCounts, error) {
	n, err := s.store.DeadLetters(ctx)
	if err != nil {
		return DeadLetterCounts{}, fmt.Errorf("queue: dead letters: %w", err)
	}
	return n, nil
}

// maxViolations bounds the violations one Enqueue reports: a batch of 1000
// bad messages must not produce a megabyte of error (it travels in gRPC
// trailers).
const maxViolations = 20

func capViolations(err error) error {
	var verr *validation.Error
	if !errors.As(err, &verr) || len(verr.Violations) <= maxViolations {
		return err
	}
	more := len(verr.Violations) - maxViolations
	return &validation.Error{Violations: append(verr.Violations[:maxViolations:maxViolations], validation.Violation{
		Field:       "messages",
		Description: fmt.Sprintf("%d more problems not listed", more),
	})}
}

// ValidContentID reports whether s has the shape of a content id.
func ValidContentID(s string) bool { return lowerHex(s, 64) }

func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// CancelRecipient stops delivery of mail queued for rcpt until now (bulk
// mail only, unless allLanes) and returns the cancel time.
func (s *Service) CancelRecipient(ctx context.Context, rcpt string, allLanes bool) (time.Time, error) {
	var errs validation.Errors
	addr := checkRecipient(&errs, "recipient", rcpt)
	if err := errs.Err(); err != nil {
		return time.Time{}, err
	}
	at := s.now()
	if err := s.store.CancelRecipient(ctx, addr, allLanes, at); err != nil {
		return time.Time{}, fmt.Errorf("queue: cancel recipient: %w", err)
	}
	return at, nil
}

// PauseSending turns the kill switch on; it survives restarts.
func (s *Service) PauseSending(ctx context.Context, reason string) (Pause, error) {
	var errs validation.Errors
	switch {
	case len(reason) > MaxPauseReasonBytes:
		errs.Addf("reason", "must be at most %d bytes", MaxPauseReasonBytes)
	case !utf8.ValidString(reason) || strings.ContainsFunc(reason, unicode.IsControl):
		errs.Add("reason", "must be valid UTF-8 without control characters")
	}
	if err := errs.Err(); err != nil {
		return Pause{}, err
	}
	p, err := s.store.SetPause(ctx, Pause{Paused: true, Reason: reason, Since: s.now()})
	if err != nil {
		return Pause{}, fmt.Errorf("queue: pause sending: %w", err)
	}
	return p, nil
}

// ResumeSending turns the kill switch off.
func (s *Service) ResumeSending(ctx context.Context) error {
	if _, err := s.store.SetPause(ctx, Pause{}); err != nil {
		return fmt.Errorf("queue: resume sending: %w", err)
	}
	return nil
}

// GetPause returns the kill switch's state.
func (s *Service) GetPause(ctx context.Context) (Pause, error) {
	p, err := s.store.GetPause(ctx)
	if err != nil {
		return Pause{}, fmt.Errorf("queue: get pause: %w", err)
	}
	return p, nil
}

// ListMessages lists message records, newest first, one page at a time.
func (s *Service) ListMessages(ctx context.Context, f ListFilter, pageSize int, pageToken string) ([]Message, string, error) {
	var errs validation.Errors
	switch {
	case pageSize < 0:
		errs.Add("page_size", "must not be negative")
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	if f.Recipient != "" {
		f.Recipient = checkRecipient(&errs, "recipient", f.Recipient)
	}
	checkTimeRange(&errs, f.CreatedAfter, f.CreatedBefore)
	var after *ListCursor
	if pageToken != "" {
		c, ok := DecodeListCursor(pageToken)
		if !ok {
			errs.Add("page_token", "is not a page token from ListMessages")
		}
		after = &c
	}
	if err := errs.Err(); err != nil {
		return nil, "", err
	}
	msgs, next, err := s.store.ListMessages(ctx, f, after, pageSize, 10*pageSize)
	if err != nil {
		return nil, "", fmt.Errorf("queue: list messages: %w", err)
	}
	token := ""
	if next != nil {
		token = next.Encode()
	}
	return msgs, token, nil
}

// RetryDeadLetters queues dead messages again (all lanes when lane is 0).
func (s *Service) RetryDeadLetters(ctx context.Context, lane Lane, limit int) (int, error) {
	var errs validation.Errors
	switch {
	case limit < 0:
		errs.Add("limit", "must not be negative")
	case limit == 0 || limit > MaxRetryDeadLetters:
		limit = MaxRetryDeadLetters
	}
	if err := errs.Err(); err != nil {
		return 0, err
	}
	n, err := s.store.RetryDeadLetters(ctx, lane, limit, s.now())
	if err != nil {
		return n, fmt.Errorf("queue: retry dead letters: %w", err)
	}
	return n, nil
}

// Bounds of a creation-time filter: the index holds Unix milliseconds, and
// nothing was queued before paperroute existed; a bound outside is a
// mistake (seconds sent as milliseconds, a zero date), not a query.
var (
	minListTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxListTime = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkTimeRange validates ListMessages' created_after and created_before
// (zero: unbounded).
func checkTimeRange(errs *validation.Errors, after, before time.Time) {
	ok := true
	for _, b := range []struct {
		field string
		t     time.Time
	}{{"created_after", after}, {"created_before", before}} {
		if !b.t.IsZero() && (b.t.Before(minListTime) || !b.t.Before(maxListTime)) {
			errs.Addf(b.field, "must be between %s and %s", minListTime.Format(time.DateOnly), maxListTime.Format(time.DateOnly))
			ok = false
		}
	}
	if ok && !after.IsZero() && !before.IsZero() && !before.After(after) {
		errs.Add("created_before", "must be later than created_after")
	}
}
