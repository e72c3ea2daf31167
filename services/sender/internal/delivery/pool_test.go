package delivery_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

// TestPooledConnectionIsGivenBackWithoutASend: a worker that borrows the
// pool's only connection and then sends nothing on it (here the recipient
// was cancelled) gives it back at once. Kept while the worker waits for its
// next entry, it would leave another worker that took the next message
// waiting for the connection forever. Each round cancels one message and
// then queues one to send, which any of the three workers may take.
func TestPooledConnectionIsGivenBackWithoutASend(t *testing.T) {
	q, m := newMemQueue(), &fakeMailer{}
	pool, err := smtpmail.NewPool(m, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	d, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Partitions: 1, Workers: 3, Consumer: "test", MaxAttempts: 4, RetryAfter: time.Hour,
		Lease: time.Minute, MaxPerConn: 100, Grace: time.Second, Logger: logging.Discard(),
	}, q, pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; pool.Close() })
	for i := range 6 {
		gone := fmt.Sprintf("gone%d@example.com", i)
		q.mu.Lock()
		q.cancelled[gone] = time.Now().Add(time.Hour) // after it is queued
		q.mu.Unlock()
		id := q.add(gone, gone, queue.LaneBulk)
		waitFor(t, "CANCELLED", func() bool { return q.record(id).State == queue.StateCancelled })
		kept := q.add(fmt.Sprint("kept", i), fmt.Sprintf("kept%d@example.com", i), queue.LaneBulk)
		waitFor(t, fmt.Sprintf("round %d: SENT after a cancel", i), func() bool { return q.record(kept).State == queue.StateSent })
	}
}
