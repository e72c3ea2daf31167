package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// TestListSlot checks that ListSlot's partial records carry exactly what a
// full read says about the fields ListDue uses, skips records that left the
// slot or were removed after the index was read, and reports a corrupt one.
func TestListSlot(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	slot := subscription.Slot{Timezone: "Europe/Berlin", Hour: 7, Weekday: -1}
	ids := []string{"01J0000000000000000000000A", "01J0000000000000000000000B", "01J0000000000000000000000C", "01J0000000000000000000000D", "01J0000000000000000000000E"}
	for i, id := range ids {
		email := fmt.Sprintf("u%d@example.com", i)
		if err := s.Create(ctx, email, record(id, email)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, id, func(c *subscription.Subscriber) (bool, error) {
			c.State = subscription.StateActive
			c.TokenEpoch = uint64(i)
			c.Consent.ConfirmTime = t0
			c.Consent.ConfirmIP = "192.0.2.9"
			switch i {
			case 1:
				c.Preferences.Topics = []string{"cs.AI", "cs.LG"}
				c.Preferences.Keywords = []string{`say "hi"`, "ünï", "a,b"}
				c.Preferences.Locale = "de"
			case 2:
				c.Preferences.DeliveryHour = 8 // another slot
			}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	due := func(sub subscription.Subscriber) subscription.Subscriber {
		return subscription.Subscriber{ID: sub.ID, Email: sub.Email, State: sub.State, TokenEpoch: sub.TokenEpoch, Preferences: sub.Preferences}
	}
	var want []subscription.Subscriber
	for _, id := range []string{ids[0], ids[1], ids[3], ids[4]} {
		sub, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, due(sub))
	}

	t.Run("fields", func(t *testing.T) {
		got, err := s.ListSlot(ctx, slot, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListSlot mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("paging", func(t *testing.T) {
		got, err := s.ListSlot(ctx, slot, ids[0], 2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[1:3], got); diff != "" {
			t.Errorf("ListSlot(after A, 2) mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("skips records gone or moved since the index was read", func(t *testing.T) {
		// What ListSlot sees when B unsubscribes and D is removed between
		// its ZRANGE and its reads: still indexed, but not due.
		rdb.HSet(ctx, "sub:{s}:rec:"+ids[1], "state", "unsubscribed")
		defer rdb.HSet(ctx, "sub:{s}:rec:"+ids[1], "state", "active")
		rec := rdb.HGetAll(ctx, "sub:{s}:rec:"+ids[3]).Val()
		rdb.Del(ctx, "sub:{s}:rec:"+ids[3])
		defer rdb.HSet(ctx, "sub:{s}:rec:"+ids[3], rec)
		got, err := s.ListSlot(ctx, slot, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]subscription.Subscriber{want[0], want[3]}, got); diff != "" {
			t.Errorf("ListSlot(limit 2) mismatch (-want +got):\n%s", diff)
		}
	})
	for field, value := range map[string]string{"state": "dancing", "token_epoch": "-1", "id": "someone-else", "topics": "[", "delivery_hour": "seven"} {
		t.Run("corrupt "+field, func(t *testing.T) {
			old := rdb.HGet(ctx, "sub:{s}:rec:"+ids[4], field).Val()
			rdb.HSet(ctx, "sub:{s}:rec:"+ids[4], field, value)
			defer rdb.HSet(ctx, "sub:{s}:rec:"+ids[4], field, old)
			_, err := s.ListSlot(ctx, slot, "", 10)
			if err == nil || errors.Is(err, subscription.ErrNotFound) {
				t.Errorf("ListSlot over a corrupt record = %v, want a decoding error", err)
			}
		})
	}
}
