package sendertest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// memStore is an in-memory queue.Store: the real Service runs on it, so the
// fake validates, deduplicates and answers exactly as the sender does. It
// delivers nothing: every message stays QUEUED unless a test changes it.
type memStore struct {
	mu       sync.Mutex
	contents map[string]queue.Content
	messages map[string]queue.Message
	order    []string // message ids in the order they were queued
	cancels  map[string]time.Time
	pause    queue.Pause
}

var _ queue.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{contents: map[string]queue.Content{}, messages: map[string]queue.Message{}, cancels: map[string]time.Time{}}
}

func (s *memStore) PutContents(_ context.Context, contents map[string]queue.Content) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.contents, contents)
	return nil
}

func (s *memStore) ContentVariables(_ context.Context, ids []string) (map[string][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, id := range ids {
		if c, ok := s.contents[id]; ok {
			out[id] = c.Variables()
		}
	}
	return out, nil
}

func (s *memStore) TouchContents(context.Context, []string) error { return nil }

func (s *memStore) Enqueue(_ context.Context, messages []queue.Message) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	created := make([]bool, len(messages))
	for i, m := range messages {
		if old, ok := s.messages[m.ID]; ok {
			if old.IdempotencyKey != m.IdempotencyKey {
				return nil, fmt.Errorf("sendertest: enqueue %s: %w", m.ID, queue.ErrKeyCollision)
			}
			continue
		}
		m.Variables = maps.Clone(m.Variables)
		s.messages[m.ID] = m
		s.order = append(s.order, m.ID)
		created[i] = true
	}
	return created, nil
}

func (s *memStore) GetMessage(_ context.Context, id string) (queue.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return queue.Message{}, fmt.Errorf("sendertest: get message %s: %w", id, queue.ErrNotFound)
	}
	m.Variables = maps.Clone(m.Variables)
	return m, nil
}

func (s *memStore) Stats(context.Context) ([]queue.LaneStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byLane := map[queue.Lane]*queue.LaneStats{}
	var out []queue.LaneStats
	for _, lane := range queue.Lanes() {
		out = append(out, queue.LaneStats{Lane: lane})
	}
	for i := range out {
		byLane[out[i].Lane] = &out[i]
	}
	for _, m := range s.messages {
		st := byLane[m.Lane]
		switch m.State {
		case queue.StateSent:
			st.Sent++
		case queue.StateDead:
			st.Dead++
		default:
			st.Waiting++
		}
	}
	return out, nil
}

func (s *memStore) DeadLetters(context.Context) (queue.DeadLetterCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out queue.DeadLetterCounts
	for _, m := range s.messages {
		if m.State == queue.StateDead {
			out.Dead++
		}
	}
	return out, nil
}

// snapshot returns the queued messages in order with their contents.
func (s *memStore) snapshot() ([]queue.Message, map[string]queue.Content) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]queue.Message, len(s.order))
	for i, id := range s.order {
		out[i] = s.messages[id]
		out[i].Variables = maps.Clone(out[i].Variables)
	}
	return out, maps.Clone(s.contents)
}

func (s *memStore) CancelRecipient(_ context.Context, rcpt string, _ bool, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels[rcpt] = at
	return nil
}

func (s *memStore) SetPause(_ context.Context, p queue.Pause) (queue.Pause, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Paused && s.pause.Paused {
		p.Since = s.pause.Since
	}
	s.pause = p
	return p, nil
}

func (s *memStore) GetPause(context.Context) (queue.Pause, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pause, nil
}

// cancelled returns the recipients cancelled so far.
func (s *memStore) cancelled() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.cancels)
}

func (s *memStore) ListMessages(_ context.Context, f queue.ListFilter, after *queue.ListCursor, limit, _ int) ([]queue.Message, *queue.ListCursor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []queue.Message
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		m := s.messages[s.order[i]]
		if after != nil {
			if m.ID == after.ID {
				after = nil
			}
			continue
		}
		if !f.Match(m) {
			continue
		}
		if len(out) == limit {
			last := out[len(out)-1]
			return out, &queue.ListCursor{CreatedMs: last.Created.UnixMilli(), ID: last.ID}, nil
		}
		m.Variables = maps.Clone(m.Variables)
		out = append(out, m)
	}
	return out, nil, nil
}

func (s *memStore) RetryDeadLetters(_ context.Context, lane queue.Lane, limit int, at time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range s.order {
		m := s.messages[id]
		if m.State == queue.StateDead && (lane == 0 || m.Lane == lane) && n < limit {
			m.State, m.Attempts, m.LastError, m.Updated = queue.StateQueued, 0, "", at
			s.messages[id] = m
			n++
		}
	}
	return n, nil
}
