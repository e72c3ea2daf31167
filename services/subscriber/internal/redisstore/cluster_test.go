package redisstore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/subscriber/internal/redisstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// TestOnRedisCluster runs every multi-key operation of the store, the job
// stream and the limiter on a real 3-master Redis Cluster: Cluster refuses a
// MULTI or script whose keys span slots (CROSSSLOT), so this fails if any
// key lacks the {s} hash tag where it needs it.
func TestOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	rdb := c.Client()
	ctx := context.Background()
	s := redisstore.New(rdb, bytes.Repeat([]byte("h"), 32))

	sub := record("01J0000000000000000000000A", "Ada@example.com")
	if err := s.Create(ctx, "ada@example.com", sub); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := s.Update(ctx, sub.ID, func(cur *subscription.Subscriber) (bool, error) {
		cur.State = subscription.StateActive
		cur.Preferences.Topics = []string{"rl"}
		return true, nil
	})
	if err != nil || got.State != subscription.StateActive {
		t.Fatalf("Update = %v, %v", got.State, err)
	}
	due, err := s.ListSlot(ctx, subscription.SlotOf(got.Preferences), "", 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("ListSlot = %v, %v", due, err)
	}
	if zones, err := s.Timezones(ctx); err != nil || len(zones) != 1 {
		t.Fatalf("Timezones = %v, %v", zones, err)
	}
	if _, err := s.Update(ctx, sub.ID, func(cur *subscription.Subscriber) (bool, error) {
		cur.State = subscription.StateSuppressed
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, sub.ID, func(subscription.Subscriber) (bool, bool) { return true, true }); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := s.Suppressed(ctx, "ada@example.com"); err != nil || !ok {
		t.Fatalf("Suppressed = %v, %v", ok, err)
	}

	jobs := redisstore.NewJobs(rdb, "c1")
	jobs.RetryAfter = 0
	if err := jobs.Push(ctx, subscription.Job{Kind: subscription.JobCancel, Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	var handled []string
	n, err := jobs.RunOnce(ctx, logging.Discard(), func(_ context.Context, j subscription.Job) error {
		handled = append(handled, j.Email)
		return nil
	})
	if err != nil || n != 1 || len(handled) != 1 {
		t.Fatalf("RunOnce = %d, %v, %v", n, err, handled)
	}

	lim := redisstore.NewLimiter(rdb, bytes.Repeat([]byte("h"), 32))
	l := subscription.Limit{Rate: 1, Burst: 1, Period: time.Hour}
	if wait, err := lim.Allow(ctx, "mailbox", "ada@example.com", l); err != nil || wait != 0 {
		t.Fatalf("first Allow = %v, %v", wait, err)
	}
	if wait, err := lim.Allow(ctx, "mailbox", "ada@example.com", l); err != nil || wait <= 0 {
		t.Fatalf("second Allow = %v, %v; want refused", wait, err)
	}
}
