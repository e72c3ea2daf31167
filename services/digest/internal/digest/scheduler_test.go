package digest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
)

func (h *harness) scheduler() *digest.Scheduler {
	h.t.Helper()
	sc, err := digest.NewScheduler(h.svc, h.store, 30*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return sc
}

// tick runs one scheduler tick at the clock's time t.
func (h *harness) tick(sc *digest.Scheduler, at string) []digest.Run {
	h.t.Helper()
	h.setNow(utc(at))
	runs, err := sc.Tick(context.Background())
	if err != nil {
		h.t.Fatalf("Tick at %s: %v", at, err)
	}
	return runs
}

func slots(runs []digest.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Slot.Format("15:04"))
	}
	return out
}

func TestSchedulerRunsEachSlotOnceAndCatchesUp(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T05:50:00Z"), 5)
	h.importFixture()
	h.addSubs(
		sub("berlin", "Europe/Berlin", 8),    // 06:00 UTC
		sub("kolkata", "Asia/Kolkata", 12),   // 06:30 UTC
		sub("la", "America/Los_Angeles", 23), // 06:00 UTC, 23:00 on the 11th in LA
		sub("tokyo", "Asia/Tokyo", 19),       // 10:00 UTC
	)
	sc := h.scheduler()

	if runs := h.tick(sc, "2026-06-12T05:50:00Z"); !slices.Equal(slots(runs), []string{"05:45"}) {
		t.Fatalf("first tick ran slots %v, want the current one (05:45)", slots(runs))
	}
	if runs := h.tick(sc, "2026-06-12T05:55:00Z"); len(runs) != 0 {
		t.Errorf("second tick in the same slot ran %v, want nothing", slots(runs))
	}
	// Down from 05:55 to 09:10 (UTC): the missed slots run at the next tick.
	runs := h.tick(sc, "2026-06-12T09:10:00Z")
	if len(runs) != 13 || runs[0].Slot != utc("2026-06-12T06:00:00Z") || runs[12].Slot != utc("2026-06-12T09:00:00Z") {
		t.Fatalf("catch-up ran slots %v, want 06:00 through 09:00", slots(runs))
	}
	var queued, missed int64
	for _, r := range runs {
		queued += r.Counts.Queued
		missed += r.Counts.Missed
	}
	if queued != 2 || missed != 1 {
		t.Errorf("catch-up queued %d and missed %d, want berlin and kolkata queued, la missed (its day ended)", queued, missed)
	}
	if runs := h.tick(sc, "2026-06-12T09:14:00Z"); len(runs) != 0 {
		t.Errorf("tick after catch-up ran %v, want nothing", slots(runs))
	}
	h.tick(sc, "2026-06-12T10:01:00Z")
	for _, want := range []struct{ rcpt, key string }{
		{"berlin@example.com", "digest:berlin:2026-06-12"},
		{"kolkata@example.com", "digest:kolkata:2026-06-12"},
		{"tokyo@example.com", "digest:tokyo:2026-06-12"},
	} {
		if got := h.keys(want.rcpt); !slices.Equal(got, []string{want.key}) {
			t.Errorf("%s got %v, want exactly %s", want.rcpt, got, want.key)
		}
	}
	if got := h.keys("la@example.com"); len(got) != 0 {
		t.Errorf("la got %v; a slot is caught up only on the same local day", got)
	}
}

func TestSchedulerCatchUpIsBoundedToADay(t *testing.T) {
	h := newHarness(t, utc("2026-06-10T12:00:00Z"), 5)
	sc := h.scheduler()
	h.tick(sc, "2026-06-10T12:00:00Z")
	runs := h.tick(sc, "2026-06-12T12:00:00Z") // down for two days
	if len(runs) != 101 || runs[0].Slot != utc("2026-06-11T11:00:00Z") {
		t.Errorf("catch-up after two days ran %d slots from %v, want 101 from 11:00 the day before", len(runs), runs[0].Slot)
	}
}

func TestSchedulerRestartMidSlotSendsNobodyTwice(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T06:05:00Z"), 5)
	h.importFixture()
	h.addSubs(sub("a", "Europe/Berlin", 8), sub("b", "Europe/Berlin", 8), sub("c", "Europe/Berlin", 8))
	// The first process queues a and c, but b is refused; then it "dies".
	h.sender.Reject(func(m *senderv1.OutboundMessage) bool { return m.GetRecipient() == "b@example.com" })
	sc := h.scheduler()
	h.setNow(utc("2026-06-12T06:05:00Z"))
	runs, err := sc.Tick(context.Background())
	if err == nil || len(runs) != 1 || runs[0].Counts.Queued != 2 || runs[0].Counts.Failed != 1 {
		t.Fatalf("first tick = %+v, %v; want a and c queued, b failed, and an error", runs, err)
	}

	// A new process (same Redis) takes over the slot once the dead one's
	// lease has expired (here: at once).
	h.sender.Reject(nil)
	h.restart()
	if err := h.rdb.Del(context.Background(), "dig:sched:lease").Err(); err != nil {
		t.Fatal(err)
	}
	sc = h.scheduler()
	runs = h.tick(sc, "2026-06-12T06:20:00Z")
	if len(runs) != 2 || runs[0].Slot != utc("2026-06-12T06:00:00Z") || runs[0].Counts.Queued != 1 || runs[0].Counts.Duplicate != 2 {
		t.Fatalf("after the restart ran %+v, want slot 06:00 again: b queued, a and c duplicates", runs)
	}
	for _, rcpt := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if n := len(h.sender.MailsTo(rcpt)); n != 1 {
			t.Errorf("%s has %d digests, want exactly 1", rcpt, n)
		}
	}
}

func TestSchedulerInterruptedRunIsRetried(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T06:05:00Z"), 5)
	h.importFixture()
	h.addSubs(sub("a", "Europe/Berlin", 8))
	h.sender.FailEnqueue(status.Error(codes.Unavailable, "sender restarting"))
	sc := h.scheduler()
	h.setNow(utc("2026-06-12T06:05:00Z"))
	if _, err := sc.Tick(context.Background()); err == nil {
		t.Fatal("tick with the sender down succeeded")
	}
	h.sender.FailEnqueue(nil)
	runs := h.tick(sc, "2026-06-12T06:06:00Z")
	if len(runs) != 1 || runs[0].Counts.Queued != 1 {
		t.Errorf("retry = %+v, want the slot run again and a queued", runs)
	}
}

func TestSchedulerLeaseKeepsOneReplica(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T06:05:00Z"), 5)
	one, two := h.scheduler(), h.scheduler()
	if runs := h.tick(one, "2026-06-12T06:05:00Z"); len(runs) != 1 {
		t.Fatalf("first replica ran %v", slots(runs))
	}
	if runs := h.tick(two, "2026-06-12T06:20:00Z"); len(runs) != 0 {
		t.Errorf("second replica ran %v while the first holds the lease", slots(runs))
	}
	if runs := h.tick(one, "2026-06-12T06:20:00Z"); len(runs) != 1 {
		t.Errorf("lease holder ran %v, want the 06:15 slot", slots(runs))
	}
}

func TestSchedulerAcrossDSTDeliversOnce(t *testing.T) {
	for _, tt := range []struct {
		name, from string
		want       string // the one edition
	}{
		{"nonexistent 02:00 (spring forward)", "2026-03-28T22:00:00Z", "digest:night:2026-03-29"},
		{"repeated 02:00 (fall back)", "2026-10-24T22:00:00Z", "digest:night:2026-10-25"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, utc(tt.from), 5)
			h.addSubs(sub("night", "Europe/Berlin", 2))
			// Papers featured in the evening, so the window holds them.
			data := `[{"paper":{"id":"2606.00001","title":"A paper","upvotes":5,"submittedOnDailyAt":"` + utc(tt.from).Format(time.RFC3339) + `"}},
				{"paper":{"id":"2606.00002","title":"Another paper","upvotes":3,"submittedOnDailyAt":"` + utc(tt.from).Format(time.RFC3339) + `"}}]`
			if _, err := h.papers.Import(context.Background(), library.FormatHFDailyJSON, []byte(data)); err != nil {
				t.Fatal(err)
			}
			sc := h.scheduler()
			for at := utc(tt.from); at.Before(utc(tt.from).Add(6 * time.Hour)); at = at.Add(7 * time.Minute) {
				h.tick(sc, at.Format(time.RFC3339))
			}
			if got := h.keys("night@example.com"); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("digests = %v, want exactly %s", got, tt.want)
			}
		})
	}
}
