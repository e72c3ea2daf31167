package redisstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// windowFixture stores papers featured on days around a window, and one
// whose source told no time: it was stored on 8 June and refreshed on
// 12 June, and stays a paper of 8 June.
func windowFixture(t *testing.T) []paper.Paper {
	t.Helper()
	at := func(id, day string, hour int) paper.Paper {
		x := onDay(id, 10, day)
		d, _ := time.Parse(time.DateOnly, day)
		x.SubmitTime = d.Add(time.Duration(hour) * time.Hour)
		return x
	}
	untimed := onDay("2606.00009", 5, "2026-06-08")
	untimed.PublishTime = time.Time{}
	untimed.UpdateTime = time.Date(2026, 6, 12, 8, 0, 0, 0, time.UTC)
	return []paper.Paper{
		at("2606.00001", "2026-06-07", 12), at("2606.00002", "2026-06-09", 23),
		at("2606.00003", "2026-06-10", 1), at("2606.00004", "2026-06-11", 9),
		at("2606.00005", "2026-06-12", 7), at("2606.00006", "2026-06-12", 20),
		at("2606.00007", "2026-06-14", 6), untimed,
	}
}

func TestWindowPapersReadsTheWindowsDays(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.UpsertPapers(ctx, windowFixture(t)); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 6, 9, 23, 0, 0, 0, time.UTC)
	to := time.Date(2026, 6, 12, 8, 0, 0, 0, time.UTC)
	got, err := s.WindowPapers(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := ids(got)
	slices.Sort(gotIDs)
	if want := []string{"2606.00002", "2606.00003", "2606.00004", "2606.00005"}; !cmp.Equal(gotIDs, want) {
		t.Errorf("WindowPapers(%v, %v) = %v, want %v", from, to, gotIDs, want)
	}
}

// Papers stored before the by_day index are found too.
func TestWindowPapersFindsPapersStoredBeforeTheDayIndex(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.UpsertPapers(ctx, windowFixture(t)); err != nil {
		t.Fatal(err)
	}
	old := "2147483637:2606.00010"
	rdb.HSet(ctx, "dig:{papers}:all", "2606.00010", old)
	rdb.ZAdd(ctx, "dig:{papers}:by_upvotes", redisZ(old))
	rdb.Set(ctx, "dig:{papers}:paper:2606.00010", `{"id":"2606.00010","title":"T","upvotes":10,"submit_time":"2026-06-11T10:00:00Z"}`, 0)
	got, err := s.WindowPapers(ctx, time.Date(2026, 6, 11, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 11, 23, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := ids(got)
	slices.Sort(gotIDs)
	if want := []string{"2606.00004", "2606.00010"}; !cmp.Equal(gotIDs, want) {
		t.Errorf("WindowPapers = %v, want %v", gotIDs, want)
	}
}
