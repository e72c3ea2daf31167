package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// Many workers finishing at once share pipelines: every one of them gets
// its own outcome, each message is recorded once and acknowledged, also
// when the script cache was emptied (Redis restarted) and when some of the
// callers are finishing the same message again.
func TestConcurrentFinishesAreEachRecorded(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	const n = 200
	msgs := make([]queue.Message, n)
	for i := range msgs {
		msgs[i] = message(fmt.Sprint("batch-", i), queue.LaneBulk)
	}
	if _, err := s.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	var entries []delivery.Entry
	for p := range partitions {
		got, err := s.Read(ctx, p, "c1", n, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, got...)
	}
	if len(entries) != n {
		t.Fatalf("read %d entries, want %d", len(entries), n)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i, e := range entries {
		for range 1 + i%2 { // every other message twice at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.MarkSent(ctx, e, "250 ok", time.Now())
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("MarkSent: %v", err)
		}
	}
	for _, e := range entries {
		if m := rdb.Get(ctx, redisstore.MarkKey(e.Partition, e.MessageID)).Val(); m != "sent" {
			t.Fatalf("mark of %s = %q, want sent", e.MessageID, m)
		}
	}
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		want := int64(0)
		if st.Lane == queue.LaneBulk {
			want = n
		}
		if st.Sent != want || st.Pending != 0 {
			t.Errorf("%v: sent %d, pending %d; want %d sent, none pending", st.Lane, st.Sent, st.Pending, want)
		}
	}
}

// A finish whose caller's context is done fails without holding up the
// others.
func TestFinishWithADoneContextFails(t *testing.T) {
	t.Parallel()
	s, _, ctx := newStore(t)
	m := message("done-ctx", queue.LaneBulk)
	if _, err := s.Enqueue(ctx, []queue.Message{m}); err != nil {
		t.Fatal(err)
	}
	e := delivery.Entry{Partition: queue.Partition(m.ID, partitions), Lane: m.Lane, StreamID: "1-1", MessageID: m.ID}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.MarkSent(done, e, "250 ok", time.Now()); err == nil {
		t.Error("MarkSent with a done context succeeded")
	}
	if err := s.MarkSent(ctx, e, "250 ok", time.Now()); err != nil {
		t.Errorf("MarkSent after it = %v", err)
	}
}

// Many workers leasing at once share pipelines with each other: each gets
// its own lease, attempt count and its recipient's cancel time.
func TestConcurrentLeasesAreEachTheirOwn(t *testing.T) {
	t.Parallel()
	s, _, ctx := newStore(t)
	const n = 100
	msgs := make([]queue.Message, n)
	for i := range msgs {
		msgs[i] = message(fmt.Sprint("lease-", i), queue.LaneBulk)
		msgs[i].Recipient = fmt.Sprintf("r%d@example.com", i)
	}
	if _, err := s.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	cancelAt := time.UnixMilli(1_750_000_900_000)
	for i := 0; i < n; i += 3 {
		if err := s.CancelRecipient(ctx, msgs[i].Recipient, false, cancelAt); err != nil {
			t.Fatal(err)
		}
	}
	leases := make([]delivery.Lease, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := delivery.Entry{Partition: queue.Partition(m.ID, partitions), Lane: m.Lane, StreamID: "1-1", MessageID: m.ID}
			leases[i], errs[i] = s.Lease(ctx, e, delivery.LeaseRequest{Consumer: "c1", Duration: time.Minute, At: time.Now(), Recipient: m.Recipient})
		}()
	}
	wg.Wait()
	for i, l := range leases {
		wantCancel := time.Time{}
		if i%3 == 0 {
			wantCancel = cancelAt
		}
		if errs[i] != nil || l.Result != delivery.LeaseAcquired || l.Attempts != 1 || l.Token != "sending:c1:1" || !l.CancelledSince.Equal(wantCancel) {
			t.Errorf("lease %d = %+v, %v; want acquired, attempt 1, cancelled at %v", i, l, errs[i], wantCancel)
		}
	}
}

// cancelInFlight cancels a context as a pipeline goes out.
type cancelInFlight struct{ cancel context.CancelFunc }

func (h cancelInFlight) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h cancelInFlight) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h cancelInFlight) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.cancel()
		return next(ctx, cmds)
	}
}

// A finish whose caller's context ends while its pipeline is in flight
// (the pipeline may carry other workers' finishes too) is still recorded
// and answered: the pipeline is not cut off by one caller's context.
func TestFinishInFlightOutlivesItsContext(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	m := message("in-flight", queue.LaneBulk)
	if _, err := s.Enqueue(ctx, []queue.Message{m}); err != nil {
		t.Fatal(err)
	}
	e := delivery.Entry{Partition: queue.Partition(m.ID, partitions), Lane: m.Lane, StreamID: "1-1", MessageID: m.ID}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	rdb.AddHook(cancelInFlight{cancel: cancel})
	if err := s.MarkSent(callCtx, e, "250 ok", time.Now()); err != nil {
		t.Errorf("MarkSent whose context ended in flight = %v, want recorded", err)
	}
	if callCtx.Err() == nil {
		t.Fatal("the hook did not cancel the context: the test proves nothing")
	}
	if got, err := s.GetMessage(ctx, m.ID); err != nil || got.State != queue.StateSent {
		t.Errorf("record = %v, %v; want SENT", got.State, err)
	}
}
