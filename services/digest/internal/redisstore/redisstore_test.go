package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

func newStore(t *testing.T) (*redisstore.Store, redis.UniversalClient) {
	t.Helper()
	rdb := redistest.Start(t, redistest.WithoutAppendOnly()).Client()
	return redisstore.New(rdb), rdb
}

func p(id string, upvotes int) paper.Paper {
	return paper.Paper{
		ID: id, Title: "Title of " + id, Summary: "S", Authors: []string{"A", "B"}, Upvotes: upvotes,
		Comments: 2, GitHubStars: 3, GitHubRepo: "https://github.com/a/b", Keywords: []string{"k"},
		PublishTime: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		UpdateTime:  time.Date(2026, 6, 12, 8, 0, 0, 123, time.UTC),
		FeaturedDay: "2026-06-12",
		Counted:     paper.CountAll,
	}
}

func ids(papers []paper.Paper) []string {
	var out []string
	for _, p := range papers {
		out = append(out, p.ID)
	}
	return out
}

// walk pages through every paper with the given page size.
func walk(t *testing.T, s *redisstore.Store, size int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for range 1000 {
		page, next, err := s.ListPapers(context.Background(), size, cursor)
		if err != nil {
			t.Fatalf("ListPapers: %v", err)
		}
		if len(page) > size {
			t.Fatalf("page of %d, want at most %d", len(page), size)
		}
		all = append(all, ids(page)...)
		if next == "" {
			return all
		}
		cursor = next
	}
	t.Fatal("ListPapers never ended")
	return nil
}

func TestUpsertAndList(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	created, err := s.UpsertPapers(ctx, []paper.Paper{p("2606.00003", 5), p("2606.00001", 5), p("hep-th/9901001", 9), p("2606.00002", 0)})
	if err != nil || created != 4 {
		t.Fatalf("UpsertPapers = %d, %v; want 4 created", created, err)
	}
	want := []string{"hep-th/9901001", "2606.00001", "2606.00003", "2606.00002"}
	for _, size := range []int{1, 2, 3, 4, 10} {
		t.Run(fmt.Sprintf("page size %d", size), func(t *testing.T) {
			if diff := cmp.Diff(want, walk(t, s, size)); diff != "" {
				t.Errorf("walk (-want +got):\n%s", diff)
			}
		})
	}

	got, _, err := s.ListPapers(ctx, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]paper.Paper{p("hep-th/9901001", 9)}, got); diff != "" {
		t.Errorf("stored paper does not round-trip (-want +got):\n%s", diff)
	}

	// Refresh: upvotes change the order, and the old rank entry goes away.
	refreshed := p("2606.00002", 100)
	refreshed.Title = "New title"
	created, err = s.UpsertPapers(ctx, []paper.Paper{refreshed, p("2606.00004", 1)})
	if err != nil || created != 1 {
		t.Fatalf("UpsertPapers = %d, %v; want 1 created", created, err)
	}
	want = []string{"2606.00002", "hep-th/9901001", "2606.00001", "2606.00003", "2606.00004"}
	if diff := cmp.Diff(want, walk(t, s, 2)); diff != "" {
		t.Errorf("walk after refresh (-want +got):\n%s", diff)
	}
	top, _, err := s.ListPapers(ctx, 1, "")
	if err != nil || len(top) != 1 || top[0].Title != "New title" || top[0].Upvotes != 100 {
		t.Errorf("top paper after refresh = %+v, %v; want the refreshed 2606.00002", top, err)
	}
}

func TestListEmptyAndBadCursor(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	got, next, err := s.ListPapers(ctx, 10, "")
	if err != nil || len(got) != 0 || next != "" {
		t.Errorf("ListPapers on an empty store = %v, %q, %v; want nothing", got, next, err)
	}
	for _, cursor := range []string{"x", "!!!", "cDE6MDAwMDAwMDAwMDpub3QtYW4taWQ", "cDI6MDAwMDAwMDAwMDoyNjA2LjAwMDAx", "YWJj"} {
		if _, _, err := s.ListPapers(ctx, 10, cursor); !errors.Is(err, digest.ErrBadCursor) {
			t.Errorf("ListPapers(cursor %q) error = %v, want ErrBadCursor", cursor, err)
		}
	}
}

func TestConcurrentUpsertsKeepOneRankEntryPerPaper(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				batch := []paper.Paper{p("2606.00001", w*10+i), p("2606.00002", i)}
				if _, err := s.UpsertPapers(ctx, batch); err != nil {
					t.Errorf("UpsertPapers: %v", err)
				}
			}
		})
	}
	wg.Wait()
	members, err := rdb.ZRange(ctx, "dig:{papers}:by_upvotes", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Errorf("rank index holds %q, want one entry per paper", members)
	}
}

func TestRuns(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	created := time.Date(2026, 6, 12, 7, 0, 0, 5, time.UTC)
	run := digest.Run{ID: "01J0000000000000000000000A", Edition: "2026-06-12", State: digest.RunRunning, DryRun: true, CreateTime: created}
	if err := s.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.TTL(ctx, "dig:run:"+run.ID).Val(); ttl < digest.RunTTL-time.Minute || ttl > digest.RunTTL {
		t.Errorf("run TTL = %v, want %v", ttl, digest.RunTTL)
	}
	if err := s.SetRunPapers(ctx, run.ID, []string{"2606.00001", "hep-th/9901001"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.AddRunCounts(ctx, run.ID, digest.Counts{Due: 3, Queued: 1, Duplicate: 1, Skipped: 0, Failed: 1}); err != nil {
			t.Fatal(err)
		}
	}
	finished := created.Add(time.Minute)
	if err := s.FinishRun(ctx, run.ID, digest.RunSucceeded, "1 failed", finished); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := digest.Run{
		ID: run.ID, Edition: "2026-06-12", State: digest.RunSucceeded, DryRun: true,
		Counts:   digest.Counts{Due: 6, Queued: 2, Duplicate: 2, Failed: 2},
		PaperIDs: []string{"2606.00001", "hep-th/9901001"}, CreateTime: created, FinishTime: finished, Error: "1 failed",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetRun (-want +got):\n%s", diff)
	}
	if ttl := rdb.TTL(ctx, "dig:run:"+run.ID).Val(); ttl <= 0 {
		t.Errorf("run TTL after updates = %v, want it kept", ttl)
	}
}

func TestRunNotFound(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	const id = "01J0000000000000000000000B"
	if _, err := s.GetRun(ctx, id); !errors.Is(err, digest.ErrNotFound) {
		t.Errorf("GetRun(missing) = %v, want ErrNotFound", err)
	}
	for name, update := range map[string]func() error{
		"SetRunPapers": func() error { return s.SetRunPapers(ctx, id, []string{"2606.00001"}) },
		"AddRunCounts": func() error { return s.AddRunCounts(ctx, id, digest.Counts{Due: 1}) },
		"FinishRun":    func() error { return s.FinishRun(ctx, id, digest.RunFailed, "x", time.Now()) },
	} {
		if err := update(); !errors.Is(err, digest.ErrNotFound) {
			t.Errorf("%s(missing run) = %v, want ErrNotFound", name, err)
		}
	}
	if n := rdb.Exists(ctx, "dig:run:"+id).Val(); n != 0 {
		t.Errorf("an update of a missing run created it")
	}
}

func TestCorruptRunIsAnError(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	const id = "01J0000000000000000000000C"
	rdb.HSet(ctx, "dig:run:"+id, "state", "WEIRD", "due", "x")
	if _, err := s.GetRun(ctx, id); err == nil || errors.Is(err, digest.ErrNotFound) {
		t.Errorf("GetRun(corrupt) = %v, want a corruption error", err)
	}
}
