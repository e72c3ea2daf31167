package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// The creation-time filter is served by the index (ZREVRANGEBYSCORE bounds)
// and holds across pages: created_after inclusive, created_before
// exclusive, at millisecond precision rounded so that no message outside
// the range is listed.
func TestListMessagesByCreationTime(t *testing.T) {
	t.Parallel()
	s, _, ctx := newStore(t)
	t0 := time.UnixMilli(1_750_000_000_000)
	var msgs []queue.Message
	for i := range 10 {
		m := message(fmt.Sprint("t", i), queue.LaneBulk)
		m.Created = t0.Add(time.Duration(i) * time.Second)
		m.Updated = m.Created
		msgs = append(msgs, m)
	}
	if _, err := s.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	list := func(f queue.ListFilter) []string {
		t.Helper()
		var keys []string
		var after *queue.ListCursor
		for pages := 0; pages < 20; pages++ {
			got, next, err := s.ListMessages(ctx, f, after, 2, 20)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range got {
				keys = append(keys, m.IdempotencyKey)
			}
			if next == nil {
				return keys
			}
			after = next
		}
		t.Fatal("more than 20 pages")
		return nil
	}
	tests := []struct {
		name string
		f    queue.ListFilter
		want string
	}{
		{"no bounds", queue.ListFilter{}, "[t9 t8 t7 t6 t5 t4 t3 t2 t1 t0]"},
		{"after is inclusive, before exclusive", queue.ListFilter{CreatedAfter: t0.Add(2 * time.Second), CreatedBefore: t0.Add(7 * time.Second)}, "[t6 t5 t4 t3 t2]"},
		{"sub-millisecond bounds", queue.ListFilter{
			CreatedAfter: t0.Add(2*time.Second - 500*time.Microsecond), CreatedBefore: t0.Add(7*time.Second + 500*time.Microsecond)}, "[t7 t6 t5 t4 t3 t2]"},
		{"just after a message", queue.ListFilter{CreatedAfter: t0.Add(8*time.Second + time.Microsecond)}, "[t9]"},
		{"only an upper bound", queue.ListFilter{CreatedBefore: t0.Add(2 * time.Second)}, "[t1 t0]"},
		{"with another filter", queue.ListFilter{CreatedAfter: t0.Add(time.Second), State: queue.StateQueued, Lane: queue.LaneTransactional}, "[]"},
		{"empty window", queue.ListFilter{CreatedAfter: t0.Add(20 * time.Second)}, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(list(tt.f)); got != tt.want {
				t.Errorf("listed %s, want %s", got, tt.want)
			}
		})
	}
}
