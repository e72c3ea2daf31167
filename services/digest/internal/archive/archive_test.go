package archive_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/archive"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

func TestParseID(t *testing.T) {
	for _, c := range []struct {
		id         string
		weekly, ok bool
	}{
		{"2026-06-12", false, true},
		{"2024-02-29", false, true},
		{"2026-02-29", false, false},
		{"2026-13-01", false, false},
		{"2026-W01", true, true},
		{"2026-W53", true, true}, // 2026 has 53 ISO weeks
		{"2025-W53", false, false},
		{"2026-W54", false, false},
		{"2026-W00", false, false},
		{"2026-w01", false, false},
		{"26-06-12", false, false},
		{"2026-06-12/", false, false},
		{"", false, false},
		{"latest", false, false},
	} {
		weekly, err := archive.ParseID(c.id)
		if (err == nil) != c.ok || (c.ok && weekly != c.weekly) {
			t.Errorf("ParseID(%q) = %v, %v; want weekly %v, ok %v", c.id, weekly, err, c.weekly, c.ok)
		}
	}
}

func TestIDsOfAnInstant(t *testing.T) {
	// Sunday 3 January 2027, 23:30 in New York: Monday 4 January UTC, ISO
	// week 1 of 2027.
	at := time.Date(2027, 1, 3, 23, 30, 0, 0, time.FixedZone("EST", -5*3600))
	if got := archive.DailyID(at); got != "2027-01-04" {
		t.Errorf("DailyID = %s, want the UTC date 2027-01-04", got)
	}
	if got := archive.WeeklyID(at); got != "2027-W01" {
		t.Errorf("WeeklyID = %s, want 2027-W01", got)
	}
	for id, want := range map[string]string{"2027-W01": "2027-01-04", "2026-W01": "2025-12-29", "2026-W53": "2026-12-28", "2020-W53": "2020-12-28"} {
		start, err := archive.WeekStart(id)
		if err != nil || start.Format(time.DateOnly) != want || start.Weekday() != time.Monday {
			t.Errorf("WeekStart(%s) = %v, %v; want Monday %s", id, start, err, want)
		}
		if got := archive.WeeklyID(start); got != id {
			t.Errorf("WeeklyID(WeekStart(%s)) = %s", id, got)
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"2026-06-12", "2026-W24", "2026-W53", "0000-00-00", "9999-W99", "2026-06-12\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		weekly, err := archive.ParseID(id)
		if err != nil {
			return
		}
		// An accepted id names exactly one day or week, and maps back.
		if weekly {
			start, err := archive.WeekStart(id)
			if err != nil || archive.WeeklyID(start) != id {
				t.Fatalf("ParseID accepted week %q but WeekStart = %v, %v", id, start, err)
			}
			return
		}
		d, err := time.Parse(time.DateOnly, id)
		if err != nil || archive.DailyID(d) != id {
			t.Fatalf("ParseID accepted day %q but it does not round-trip", id)
		}
	})
}

// trending is a stand-in for the digest service's ranking: the recorder's
// tests are about what it stores, not about ranking.
type trending struct {
	picks map[time.Duration][]ranking.Pick
	err   error
}

func (tr trending) Trending(_ context.Context, window time.Duration, limit int, topics []string) ([]ranking.Pick, []float64, error) {
	if tr.err != nil {
		return nil, nil, tr.err
	}
	if len(topics) != 0 {
		return nil, nil, errors.New("the archive asked for topics")
	}
	p := tr.picks[window]
	return p[:min(limit, len(p))], nil, nil
}

func pick(id string, upvotes int) ranking.Pick {
	p := paper.Paper{ID: id, Title: "Title " + id, Summary: "Abstract", Authors: []string{"A. Author"}, Upvotes: upvotes, GitHubRepo: "https://github.com/x/y"}
	return ranking.Pick{Paper: p, Why: ranking.Why(p, nil)}
}

func TestRecorderStoresTodaysEditions(t *testing.T) {
	store := redisstore.NewEditionStore(redistest.Start(t, redistest.WithoutAppendOnly()).Client())
	ctx := context.Background()
	now := time.Date(2026, 6, 12, 18, 0, 0, 0, time.UTC)
	weekly := 192 * time.Hour
	rec := &archive.Recorder{
		Trending: trending{picks: map[time.Duration][]ranking.Pick{
			0:      {pick("2606.00001", 50), pick("2606.00002", 40), pick("2606.00003", 30)},
			weekly: {pick("2606.00009", 90)},
		}},
		Store: store, WeeklyWindow: weekly, Papers: 2, Now: func() time.Time { return now },
	}
	if err := rec.Record(ctx); err != nil {
		t.Fatal(err)
	}
	day, err := store.GetEdition(ctx, "2026-06-12")
	if err != nil || day.Weekly || len(day.Cards) != 2 || day.Cards[0].ID != "2606.00001" || day.Cards[0].Why != "▲ 50" ||
		day.Cards[0].URL != "https://huggingface.co/papers/2606.00001" || !day.Updated.Equal(now) {
		t.Errorf("daily edition = %+v, %v; want the top 2 at %v", day, err, now)
	}
	week, err := store.GetEdition(ctx, "2026-W24")
	if err != nil || !week.Weekly || len(week.Cards) != 1 || week.Cards[0].ID != "2606.00009" {
		t.Errorf("weekly edition = %+v, %v", week, err)
	}

	// The next day's recording leaves yesterday's edition as it was.
	now = now.Add(24 * time.Hour)
	rec.Trending = trending{picks: map[time.Duration][]ranking.Pick{0: {pick("2606.00004", 5)}}}
	if err := rec.Record(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := store.GetEdition(ctx, "2026-06-12")
	if err != nil || again.Cards[0].ID != "2606.00001" || !again.Updated.Equal(day.Updated) {
		t.Errorf("yesterday's edition changed: %+v, %v", again, err)
	}
	refs, err := store.ListEditions(ctx, 10)
	if err != nil || len(refs) != 3 || refs[0].ID != "2026-06-13" {
		t.Errorf("ListEditions = %+v, %v; want 3, the newest (2026-06-13) first", refs, err)
	}
	if _, err := store.GetEdition(ctx, "2026-06-14"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("GetEdition of a day without one = %v, want ErrNotFound", err)
	}

	// A failing ranking records nothing and says so.
	now = now.Add(24 * time.Hour)
	rec.Trending = trending{err: errors.New("redis down")}
	if err := rec.Record(ctx); err == nil {
		t.Error("Record with a failing ranking = nil, want the error")
	}
	if _, err := store.GetEdition(ctx, "2026-06-14"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("a failed recording stored an edition: %v", err)
	}
}
