package senderd_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

func TestReclaimsWorkOfACrashedConsumer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := testContext(t)

	// Before the service runs, queue three messages and let another
	// consumer read them and "die" without acknowledging anything.
	store := redisstore.New(h.rdb, 2)
	if err := store.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	var batch []queue.NewMessage
	for i := range 3 {
		batch = append(batch, queue.NewMessage{
			IdempotencyKey: fmt.Sprintf("orphan:%d", i), Recipient: fmt.Sprintf("orphan%d@example.com", i),
			Lane: queue.LaneTransactional, Content: &queue.Content{Subject: "s", Text: "t"},
		})
	}
	if _, err := queue.NewService(store, nil).Enqueue(ctx, batch); err != nil {
		t.Fatal(err)
	}
	read := 0
	for p := range 2 {
		entries, err := store.Read(ctx, p, "crashed-consumer", 10, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		read += len(entries)
	}
	if read != 3 {
		t.Fatalf("the crashed consumer read %d entries, want 3", read)
	}
	if n := h.pendingCount(ctx); n != 3 {
		t.Fatalf("%d entries pending before the service starts, want 3", n)
	}

	h.start(nil)
	for i := range 3 {
		m := h.waitState(ctx, fmt.Sprintf("orphan:%d", i), senderv1.MessageState_MESSAGE_STATE_SENT)
		if m.GetAttemptCount() != 1 {
			t.Errorf("orphan:%d attempt_count = %d, want 1", i, m.GetAttemptCount())
		}
	}
	h.waitDrained(ctx)
	for i := range 3 {
		if n := len(h.mailsTo(fmt.Sprintf("orphan%d@example.com", i))); n != 1 {
			t.Errorf("orphan%d got %d mails, want 1", i, n)
		}
	}
}

func TestShutdownGraceKeepsInFlightSendsFromOtherReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	entered := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	h.mail.SetFault(func(stage mailcatcher.Stage, _ string) error {
		if stage != mailcatcher.StageData {
			return nil
		}
		first := false
		once.Do(func() { first = true; close(entered) })
		if first {
			<-release // a slow relay: many retry delays long, within the grace period
		}
		return nil
	})
	h.start(map[string]string{"SHUTDOWN_GRACE": "10s"})
	ctx := testContext(t)
	h.enqueue(ctx, txMessage("slow", "slow@example.com", "hi"))
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the send never started")
	}
	stopOther := h.startReplica("other-replica", nil)
	// Stop this replica (its reclaimer stops at once); Run returns when the
	// send in flight is done.
	h.cancel()
	h.cancel = nil
	// Hold the send until the other replica's reclaimer has taken over an
	// entry that went idle after this one: that is the moment it would
	// have taken this send over, were it not protected.
	stream := redisstore.StreamKey(queue.LaneTransactional, queue.Partition(queue.MessageID("slow"), 2))
	h.waitCanaryClaimed(ctx, stream, h.plantCanary(ctx, stream))
	close(release)
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return")
	}
	// Stopping the other replica lets any send it started finish.
	if err := stopOther(); err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(h.rdb, 2)
	m, err := store.GetMessage(ctx, queue.MessageID("slow"))
	if err != nil {
		t.Fatal(err)
	}
	if m.State != queue.StateSent {
		t.Errorf("after shutdown the message is %v, want SENT (the send finished within the grace period)", m.State)
	}
	if n := h.pendingCount(ctx); n != 0 {
		t.Errorf("%d entries still pending, want 0", n)
	}
	if n := len(h.mailsTo("slow@example.com")); n != 1 {
		t.Errorf("slow@example.com got %d mails, want 1: another replica took over a send still in flight", n)
	}
}

func TestEntriesWaitingForASlotAreNotTakenOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := testContext(t)
	store := redisstore.New(h.rdb, 1)
	if err := store.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	// One transactional and four bulk messages: the first read, holding
	// four slots, gets all five and keeps the last bulk one back.
	batch := []queue.NewMessage{{
		IdempotencyKey: "wait:tx", Recipient: "tx@example.com",
		Lane: queue.LaneTransactional, Content: &queue.Content{Subject: "s", Text: "t"},
	}}
	for i := range 4 {
		batch = append(batch, queue.NewMessage{
			IdempotencyKey: fmt.Sprintf("wait:bulk:%d", i), Recipient: fmt.Sprintf("bulk%d@example.com", i),
			Lane: queue.LaneBulk, Content: &queue.Content{Subject: "s", Text: "t"}, ListUnsubscribeURL: "https://x.example/u",
		})
	}
	if _, err := queue.NewService(store, nil).Enqueue(ctx, batch); err != nil {
		t.Fatal(err)
	}

	// This replica's relay is slow for the first message only.
	relay, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	relay.SetFault(func(stage mailcatcher.Stage, _ string) error {
		if stage != mailcatcher.StageData {
			return nil
		}
		first := false
		once.Do(func() { first = true; close(entered) })
		if first {
			<-release
		}
		return nil
	})
	// The other replica's relay (h.mail) holds everything until then too,
	// so a send it took over would still be in flight when this one sends.
	h.mail.SetFault(func(stage mailcatcher.Stage, _ string) error {
		if stage == mailcatcher.StageData {
			<-release
		}
		return nil
	})
	one := map[string]string{"SENDER_PARTITIONS": "1", "SENDER_WORKERS": "1", "SHUTDOWN_GRACE": "10s"}
	h.start(map[string]string{"SENDER_PARTITIONS": "1", "SENDER_WORKERS": "1", "SENDER_SMTP_ADDR": relay.Addr()})
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the first send never started")
	}
	stopOther := h.startReplica("other-replica", one)
	// Hold the first send until the other replica's reclaimer has taken
	// over an entry that went idle after the waiting ones: the moment it
	// would have taken them over, were they not protected. (This replica's
	// reclaimer holds no free slot, so it cannot be the one.)
	stream := redisstore.StreamKey(queue.LaneBulk, 0)
	h.waitCanaryClaimed(ctx, stream, h.plantCanary(ctx, stream))
	close(release)

	for i := range 4 {
		if err := eventually(ctx, func() bool {
			m, err := store.GetMessage(ctx, queue.MessageID(fmt.Sprintf("wait:bulk:%d", i)))
			return err == nil && m.State == queue.StateSent
		}); err != nil {
			t.Fatalf("wait:bulk:%d was never sent", i)
		}
	}
	if err := stopOther(); err != nil { // lets a send in flight there finish
		t.Fatal(err)
	}
	for i := range 4 {
		rcpt := fmt.Sprintf("bulk%d@example.com", i)
		n := len(h.mailsTo(rcpt))
		for _, m := range relay.Messages() {
			if mailcatcher.To(rcpt)(m) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s got %d mails, want 1", rcpt, n)
		}
	}
}
