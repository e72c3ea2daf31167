package digest_test

import (
	"context"
	"slices"

	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
)

func violation(t *testing.T, err error, field string) {
	t.Helper()
	var verr *validation.Error
	if !errors.As(err, &verr) || verr.Violations[0].Field != field {
		t.Errorf("error = %v, want a violation on %s", err, field)
	}
}

func TestTrending(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T18:00:00Z"), 10)
	h.importFixture()
	ctx := context.Background()

	picks, scores, err := h.svc.Trending(ctx, 0, 5, nil)
	if err != nil || len(picks) != 5 {
		t.Fatalf("Trending = %d papers, %v; want 5", len(picks), err)
	}
	for i := 1; i < len(scores); i++ {
		if scores[i] > scores[i-1] {
			t.Errorf("scores not best first: %v", scores)
		}
	}
	if !strings.HasPrefix(picks[0].Why, "▲ ") {
		t.Errorf("why = %q", picks[0].Why)
	}
	robots, _, err := h.svc.Trending(ctx, 0, 0, []string{"robotics"})
	if err != nil || len(robots) == 0 || len(robots) >= 30 {
		t.Errorf("Trending(robotics) = %d papers, %v; want some, not all", len(robots), err)
	}
	// A week later the window (72 h) is empty; a 30-day window is not.
	h.setNow(utc("2026-06-19T18:00:00Z"))
	if picks, _, err := h.svc.Trending(ctx, 0, 0, nil); err != nil || len(picks) != 0 {
		t.Errorf("Trending a week later = %d papers, %v; want none", len(picks), err)
	}
	if picks, _, err := h.svc.Trending(ctx, 30*24*time.Hour, 0, nil); err != nil || len(picks) != 20 {
		t.Errorf("Trending(30 days) = %d papers, %v; want the default limit, 20", len(picks), err)
	}

	_, _, err = h.svc.Trending(ctx, 31*24*time.Hour, 0, nil)
	violation(t, err, "window")
	_, _, err = h.svc.Trending(ctx, 0, -1, nil)
	violation(t, err, "limit")
	_, _, err = h.svc.Trending(ctx, 0, 0, []string{"robotics", "astrology"})
	violation(t, err, "topics[1]")
}

func TestPreviewDigest(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T18:00:00Z"), 6)
	ctx := context.Background()
	if _, err := h.svc.PreviewDigest(ctx, digest.PreviewPrefs{}); !errors.Is(err, digest.ErrNothingToPreview) {
		t.Errorf("PreviewDigest without papers = %v, want ErrNothingToPreview", err)
	}
	h.importFixture()
	p, err := h.svc.PreviewDigest(ctx, digest.PreviewPrefs{Topics: []string{"robotics"}, Keywords: []string{"attention"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.PaperIDs) != 6 || !strings.HasPrefix(p.Subject, "Trending papers · Fri 12 Jun · ") {
		t.Errorf("preview = %d papers, subject %q", len(p.PaperIDs), p.Subject)
	}
	for _, part := range []string{p.HTML, p.Text} {
		if !strings.Contains(part, "For you") || strings.Contains(part, "{{") || !strings.Contains(part, "https://paperroute.invalid/unsubscribe") {
			t.Errorf("preview part lacks For you or placeholder links, or keeps a variable:\n%.300s", part)
		}
	}
	weekly, err := h.svc.PreviewDigest(ctx, digest.PreviewPrefs{Weekly: true})
	if err != nil || !strings.HasPrefix(weekly.Subject, "Trending papers of the week") {
		t.Errorf("weekly preview = %q, %v", weekly.Subject, err)
	}
	for _, tt := range []struct {
		prefs digest.PreviewPrefs
		field string
	}{
		{digest.PreviewPrefs{Topics: []string{"astrology"}}, "preferences.topics[0]"},
		{digest.PreviewPrefs{Keywords: []string{"line\nbreak"}}, "preferences.keywords[0]"},
		{digest.PreviewPrefs{Keywords: []string{strings.Repeat("k", 61)}}, "preferences.keywords[0]"},
		{digest.PreviewPrefs{Keywords: make([]string, 21)}, "preferences.keywords"},
	} {
		_, err := h.svc.PreviewDigest(ctx, tt.prefs)
		violation(t, err, tt.field)
	}
}

// An operator's preview of one subscriber shows what their next digest
// would hold: their topics, and nothing they were sent before.
func TestPreviewSubscriber(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T23:00:00Z"), 12)
	ctx := context.Background()
	h.importFixture() // 30 papers featured 12 June
	ids := h.addSubs(sub("ada", "UTC", 23, topics("robotics")))

	before, err := h.svc.PreviewSubscriber(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	byPrefs, err := h.svc.PreviewDigest(ctx, digest.PreviewPrefs{Topics: []string{"robotics"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(byPrefs.PaperIDs, before.PaperIDs); diff != "" || len(before.PaperIDs) != 12 {
		t.Errorf("preview of ada = %d papers, not her preferences' (-prefs +ada):\n%s", len(before.PaperIDs), diff)
	}

	sent := h.run(digest.RunRequest{Edition: "2026-06-12"})
	if sent.Counts.Queued != 1 {
		t.Fatalf("edition = %+v, want one digest queued to ada", sent)
	}
	after, err := h.svc.PreviewSubscriber(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(after.PaperIDs) == 0 {
		t.Fatal("after one edition the preview is empty; 18 papers were left")
	}
	for _, id := range after.PaperIDs {
		if slices.Contains(sent.PaperIDs, id) {
			t.Errorf("preview after the edition shows %s, which ada was already sent", id)
		}
	}

	if _, err := h.svc.PreviewSubscriber(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, digest.ErrSubscriberNotFound) {
		t.Errorf("preview of an unknown subscriber = %v, want ErrSubscriberNotFound", err)
	}
	var verr *validation.Error
	for _, id := range []string{"", "not-an-id", strings.Repeat("x", 100)} {
		if _, err := h.svc.PreviewSubscriber(ctx, id); !errors.As(err, &verr) {
			t.Errorf("preview of id %q = %v, want a field violation", id, err)
		}
	}
}
