package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/subscriber/internal/redisstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

func newStore(t *testing.T) (*redisstore.Store, redis.UniversalClient) {
	t.Helper()
	rdb := redistest.Start(t, redistest.WithoutAppendOnly()).Client()
	return redisstore.New(rdb, bytes.Repeat([]byte("h"), 32)), rdb
}

var t0 = time.Date(2026, 6, 12, 9, 0, 0, 123456789, time.UTC)

func record(id, email string) subscription.Subscriber {
	return subscription.Subscriber{
		ID:         id,
		Email:      email,
		State:      subscription.StatePending,
		CreateTime: t0,
		UpdateTime: t0,
		Consent: subscription.ConsentEvidence{
			ConsentTextVersion: "v1",
			SignupTime:         t0,
			SignupIP:           "192.0.2.1",
			SignupUserAgent:    "UA",
		},
		Preferences: subscription.Preferences{
			Topics: []string{"llm"}, Keywords: []string{}, Frequency: subscription.FrequencyDaily,
			DeliveryHour: 7, Timezone: "Europe/Berlin", Locale: "en",
		},
	}
}

func members(t *testing.T, rdb redis.UniversalClient, key string) []string {
	t.Helper()
	m, err := rdb.ZRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCreateGetRoundTrip(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	want := record("01J0000000000000000000000A", "Ada@example.com")
	want.TokenEpoch = 3
	want.Consent.ConfirmTime = t0.Add(time.Hour)
	want.Consent.UnsubscribeChannel = subscription.ChannelOneClick
	if err := s.Create(ctx, "ada@example.com", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", diff)
	}
	byIdentity, err := s.GetByIdentity(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, byIdentity); diff != "" {
		t.Errorf("GetByIdentity mismatch (-want +got):\n%s", diff)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "sub:") {
			t.Errorf("key %q outside the sub: prefix", k)
		}
		if strings.Contains(strings.ToLower(k), "ada") {
			t.Errorf("key %q holds the address", k)
		}
	}
	if diff := cmp.Diff([]string{want.ID}, members(t, rdb, "sub:{s}:idx:pending")); diff != "" {
		t.Errorf("pending index (-want +got):\n%s", diff)
	}
}

func TestNotFound(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Get(ctx, "01J0000000000000000000000A"); !errors.Is(err, subscription.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if _, err := s.GetByIdentity(ctx, "nobody@example.com"); !errors.Is(err, subscription.ErrNotFound) {
		t.Errorf("GetByIdentity = %v, want ErrNotFound", err)
	}
	_, err := s.Update(ctx, "01J0000000000000000000000A", func(*subscription.Subscriber) (bool, error) {
		t.Error("fn called for a missing record")
		return false, nil
	})
	if !errors.Is(err, subscription.ErrNotFound) {
		t.Errorf("Update = %v, want ErrNotFound", err)
	}
}

func TestCreateIsRaceFree(t *testing.T) {
	s, rdb := newStore(t)
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			results <- s.Create(context.Background(), "race@example.com", record(fmt.Sprintf("01J00000000000000000000%03d", i), "race@example.com"))
		})
	}
	wg.Wait()
	close(results)
	var ok, exists int
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, subscription.ErrExists):
			exists++
		default:
			t.Errorf("Create: %v", err)
		}
	}
	if ok != 1 || exists != 19 {
		t.Errorf("%d created, %d ErrExists; want 1 and 19", ok, exists)
	}
	if n := len(members(t, rdb, "sub:{s}:idx:all")); n != 1 {
		t.Errorf("%d ids indexed, want 1", n)
	}
	recs, _ := rdb.Keys(context.Background(), "sub:{s}:rec:*").Result()
	if len(recs) != 1 {
		t.Errorf("record keys %v, want 1", recs)
	}
}

func TestUpdateMovesIndexes(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	sub := record("01J0000000000000000000000A", "ada@example.com")
	if err := s.Create(ctx, "ada@example.com", sub); err != nil {
		t.Fatal(err)
	}
	got, err := s.Update(ctx, sub.ID, func(cur *subscription.Subscriber) (bool, error) {
		cur.State = subscription.StateActive
		cur.Consent.ConfirmIP = "192.0.2.2"
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != subscription.StateActive || got.Consent.ConfirmIP != "192.0.2.2" {
		t.Errorf("Update returned %+v", got)
	}
	for key, want := range map[string][]string{
		"sub:{s}:idx:all":     {sub.ID},
		"sub:{s}:idx:pending": nil,
		"sub:{s}:idx:active":  {sub.ID},
	} {
		if diff := cmp.Diff(want, members(t, rdb, key), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", key, diff)
		}
	}

	t.Run("no change writes nothing", func(t *testing.T) {
		before, _ := rdb.HGetAll(ctx, "sub:{s}:rec:"+sub.ID).Result()
		_, err := s.Update(ctx, sub.ID, func(cur *subscription.Subscriber) (bool, error) {
			cur.State = subscription.StateSuppressed // changed but not reported
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := rdb.HGetAll(ctx, "sub:{s}:rec:"+sub.ID).Result()
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("record changed (-before +after):\n%s", diff)
		}
	})
	t.Run("error aborts", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.Update(ctx, sub.ID, func(cur *subscription.Subscriber) (bool, error) {
			cur.State = subscription.StateSuppressed
			return true, boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("Update = %v, want boom", err)
		}
		if got, _ := s.Get(ctx, sub.ID); got.State != subscription.StateActive {
			t.Errorf("state = %v after an aborted update", got.State)
		}
	})
	t.Run("may not change id, email or set an invalid state", func(t *testing.T) {
		for name, change := range map[string]func(*subscription.Subscriber){
			"id":    func(c *subscription.Subscriber) { c.ID = "other" },
			"email": func(c *subscription.Subscriber) { c.Email = "x@example.com" },
			"state": func(c *subscription.Subscriber) { c.State = subscription.StateUnspecified },
		} {
			if _, err := s.Update(ctx, sub.ID, func(c *subscription.Subscriber) (bool, error) { change(c); return true, nil }); err == nil {
				t.Errorf("%s: Update succeeded", name)
			}
		}
	})
}

// TestConcurrentUpdates checks that WATCH/MULTI loses no update: 20
// concurrent epoch bumps of one record end at 20.
func TestConcurrentUpdates(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	sub := record("01J0000000000000000000000A", "ada@example.com")
	if err := s.Create(ctx, "ada@example.com", sub); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := s.Update(ctx, sub.ID, func(c *subscription.Subscriber) (bool, error) { c.TokenEpoch++; return true, nil }); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenEpoch != 20 {
		t.Errorf("epoch = %d after 20 increments, want 20", got.TokenEpoch)
	}
}

func TestList(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ids := []string{"01J0000000000000000000000A", "01J0000000000000000000000B", "01J0000000000000000000000C", "01J0000000000000000000000D"}
	for i, id := range ids {
		if err := s.Create(ctx, fmt.Sprintf("u%d@example.com", i), record(id, fmt.Sprintf("u%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, ids[1], func(c *subscription.Subscriber) (bool, error) { c.State = subscription.StateActive; return true, nil }); err != nil {
		t.Fatal(err)
	}
	idsOf := func(subs []subscription.Subscriber) []string {
		var out []string
		for _, s := range subs {
			out = append(out, s.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		state subscription.State
		after string
		limit int
		want  []string
	}{
		{"all", subscription.StateUnspecified, "", 10, ids},
		{"first two", subscription.StateUnspecified, "", 2, ids[:2]},
		{"after the second", subscription.StateUnspecified, ids[1], 10, ids[2:]},
		{"after the last", subscription.StateUnspecified, ids[3], 10, nil},
		{"after an id not in the set", subscription.StateUnspecified, "01J0000000000000000000000BB", 10, ids[2:]},
		{"pending", subscription.StatePending, "", 10, []string{ids[0], ids[2], ids[3]}},
		{"active", subscription.StateActive, "", 10, []string{ids[1]}},
		{"suppressed", subscription.StateSuppressed, "", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.state, "", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, idsOf(got)); diff != "" {
				t.Errorf("List mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCorruptRecord(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	id := "01J0000000000000000000000A"
	if err := s.Create(ctx, "ada@example.com", record(id, "ada@example.com")); err != nil {
		t.Fatal(err)
	}
	for field, value := range map[string]string{"state": "dancing", "token_epoch": "-1", "signup_time": "yesterday", "id": "someone-else"} {
		t.Run(field, func(t *testing.T) {
			old, _ := rdb.HGet(ctx, "sub:{s}:rec:"+id, field).Result()
			rdb.HSet(ctx, "sub:{s}:rec:"+id, field, value)
			defer rdb.HSet(ctx, "sub:{s}:rec:"+id, field, old)
			_, err := s.Get(ctx, id)
			if err == nil || errors.Is(err, subscription.ErrNotFound) {
				t.Errorf("Get of a corrupt record = %v, want a decoding error", err)
			}
		})
	}
}

// TestListReadsPastSkippedRecords checks that a short result means the end:
// records that left the state (or were removed) between List's read of the
// index and its read of the records are skipped, and List reads on instead
// of returning a short page that callers would take for the last one.
func TestListReadsPastSkippedRecords(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	ids := []string{"01J0000000000000000000000A", "01J0000000000000000000000B", "01J0000000000000000000000C", "01J0000000000000000000000D"}
	for i, id := range ids {
		if err := s.Create(ctx, fmt.Sprintf("u%d@example.com", i), record(id, fmt.Sprintf("u%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, id, func(c *subscription.Subscriber) (bool, error) { c.State = subscription.StateActive; return true, nil }); err != nil {
			t.Fatal(err)
		}
	}
	// What List sees when B unsubscribes and C is removed between its
	// ZRANGE and its HGETALLs: still indexed as active, but not active.
	if err := rdb.HSet(ctx, "sub:{s}:rec:"+ids[1], "state", "unsubscribed").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, "sub:{s}:rec:"+ids[2]).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, subscription.StateActive, "", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, sub := range got {
		gotIDs = append(gotIDs, sub.ID)
	}
	if diff := cmp.Diff([]string{ids[0], ids[3]}, gotIDs); diff != "" {
		t.Errorf("List(active, limit 2) mismatch (-want +got):\n%s", diff)
	}
}
