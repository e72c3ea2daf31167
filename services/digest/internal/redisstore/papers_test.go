package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

func onDay(id string, upvotes int, day string) paper.Paper {
	x := p(id, upvotes)
	x.FeaturedDay = day
	return x
}

// walkDay pages through ListPapersByDay with the given page size.
func walkDay(t *testing.T, s *redisstore.Store, day string, size int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for range 1000 {
		page, next, err := s.ListPapersByDay(context.Background(), day, size, cursor)
		if err != nil {
			t.Fatalf("ListPapersByDay(%q): %v", day, err)
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
	t.Fatal("ListPapersByDay never ended")
	return nil
}

func TestListPapersByDay(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.UpsertPapers(ctx, []paper.Paper{
		onDay("2606.00001", 5, "2026-06-11"), onDay("2606.00002", 9, "2026-06-12"),
		onDay("2606.00003", 1, "2026-06-12"), onDay("2606.00004", 9, "2026-06-12"),
		onDay("2605.00001", 90, "2026-05-31"),
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		day  string
		want []string
	}{
		{"2026-06-12", []string{"2606.00002", "2606.00004", "2606.00003"}},
		{"2026-06-11", []string{"2606.00001"}},
		{"2026-06-10", nil},
		{"", []string{"2606.00002", "2606.00004", "2606.00003", "2606.00001", "2605.00001"}},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 2, 10} {
			t.Run(fmt.Sprintf("day %q size %d", tt.day, size), func(t *testing.T) {
				if diff := cmp.Diff(tt.want, walkDay(t, s, tt.day, size)); diff != "" {
					t.Errorf("walk (-want +got):\n%s", diff)
				}
			})
		}
	}

	t.Run("a cursor of another day is refused", func(t *testing.T) {
		_, next, err := s.ListPapersByDay(ctx, "2026-06-12", 1, "")
		if err != nil || next == "" {
			t.Fatalf("first page: next %q, %v", next, err)
		}
		for _, cursor := range []string{next + "x", "!!!", "ZDE6eA", next} {
			day := "2026-06-11"
			if cursor != next {
				day = "2026-06-12"
			}
			if _, _, err := s.ListPapersByDay(ctx, day, 1, cursor); !errors.Is(err, library.ErrBadCursor) {
				t.Errorf("ListPapersByDay(%q, cursor %q) error = %v, want ErrBadCursor", day, cursor, err)
			}
		}
	})

	t.Run("a refresh moves the paper within its day and to a new day", func(t *testing.T) {
		up := onDay("2606.00003", 100, "2026-06-12")
		moved := onDay("2606.00001", 5, "2026-06-12")
		moved.SubmitTime = time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC) // a daily list says so
		if _, err := s.UpsertPapers(ctx, []paper.Paper{up, moved}); err != nil {
			t.Fatal(err)
		}
		want := []string{"2606.00003", "2606.00002", "2606.00004", "2606.00001"}
		if diff := cmp.Diff(want, walkDay(t, s, "2026-06-12", 3)); diff != "" {
			t.Errorf("day after refresh (-want +got):\n%s", diff)
		}
		if got := walkDay(t, s, "2026-06-11", 3); len(got) != 0 {
			t.Errorf("2026-06-11 still lists %q", got)
		}
	})
}

func TestUpsertMerges(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	first := onDay("2606.00001", 10, "2026-06-12")
	if created, err := s.UpsertPapers(ctx, []paper.Paper{first}); err != nil || created != 1 {
		t.Fatalf("UpsertPapers = %d, %v", created, err)
	}
	// A later daily list without githubStars and without a summary.
	refresh := paper.Paper{ID: "2606.00001", Title: "T2", Upvotes: 30, Comments: 5,
		Counted: paper.CountUpvotes | paper.CountComments, FeaturedDay: "2026-06-12", UpdateTime: first.UpdateTime}
	if created, err := s.UpsertPapers(ctx, []paper.Paper{refresh}); err != nil || created != 0 {
		t.Fatalf("UpsertPapers = %d, %v; want 0 created", created, err)
	}
	got, err := s.GetPaper(ctx, "2606.00001")
	if err != nil {
		t.Fatal(err)
	}
	want := paper.Merge(first, refresh)
	if want.GitHubStars != 3 || want.Summary != "S" {
		t.Fatalf("test premise: Merge = %+v", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored paper (-want +got):\n%s", diff)
	}
}

func TestGetAndDeletePaper(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if _, err := s.GetPaper(ctx, "2606.00001"); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("GetPaper(missing) = %v, want ErrNotFound", err)
	}
	if err := s.DeletePaper(ctx, "2606.00001"); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("DeletePaper(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.UpsertPapers(ctx, []paper.Paper{onDay("2606.00001", 1, "2026-06-12"), onDay("2606.00002", 2, "2026-06-12")}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePaper(ctx, "2606.00001"); err != nil {
		t.Fatalf("DeletePaper: %v", err)
	}
	if _, err := s.GetPaper(ctx, "2606.00001"); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("GetPaper after delete = %v, want ErrNotFound", err)
	}
	for key, want := range map[string]int64{"dig:{papers}:by_day": 1, "dig:{papers}:by_upvotes": 1} {
		if n := rdb.ZCard(ctx, key).Val(); n != want {
			t.Errorf("%s holds %d members after delete, want %d", key, n, want)
		}
	}
	if n := rdb.HLen(ctx, "dig:{papers}:all").Val(); n != 1 {
		t.Errorf("id hash holds %d after delete, want 1", n)
	}
	if got := walk(t, s, 10); !cmp.Equal(got, []string{"2606.00002"}) {
		t.Errorf("ListPapers after delete = %q", got)
	}
}

// TestUpsertIsAllOrNothing makes the second paper of a batch fail (its
// stored record is corrupt) and checks that the first was not written.
func TestUpsertIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if err := rdb.Set(ctx, "dig:{papers}:paper:2606.00002", "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpsertPapers(ctx, []paper.Paper{onDay("2606.00001", 1, "2026-06-12"), onDay("2606.00002", 2, "2026-06-12")})
	if err == nil {
		t.Fatal("UpsertPapers over a corrupt record succeeded")
	}
	if _, err := s.GetPaper(ctx, "2606.00001"); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("the batch's first paper was written: GetPaper = %v", err)
	}
	if n := rdb.ZCard(ctx, "dig:{papers}:by_day").Val(); n != 0 {
		t.Errorf("by_day holds %d members after a failed upsert", n)
	}
}

// TestUpsertReplacesOldStyleIndexMember covers papers stored before the
// by_day index: their id-hash value is a by_upvotes member.
func TestUpsertReplacesOldStyleIndexMember(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	old := "2147483637:2606.00001"
	rdb.HSet(ctx, "dig:{papers}:all", "2606.00001", old)
	rdb.ZAdd(ctx, "dig:{papers}:by_upvotes", redisZ(old))
	rdb.Set(ctx, "dig:{papers}:paper:2606.00001", `{"id":"2606.00001","title":"T","upvotes":10}`, 0)
	if _, err := s.UpsertPapers(ctx, []paper.Paper{onDay("2606.00001", 20, "2026-06-12")}); err != nil {
		t.Fatal(err)
	}
	members := rdb.ZRange(ctx, "dig:{papers}:by_upvotes", 0, -1).Val()
	if !cmp.Equal(members, []string{"2147483627:2606.00001"}) {
		t.Errorf("by_upvotes = %q, want only the new member", members)
	}
}

func redisZ(member string) redis.Z { return redis.Z{Member: member} }
