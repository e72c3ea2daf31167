package ranking_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

var now = time.Date(2026, 6, 12, 18, 0, 0, 0, time.UTC)

func featured(hoursAgo float64) time.Time {
	return now.Add(-time.Duration(hoursAgo * float64(time.Hour)))
}

func TestScoreWorkedExample(t *testing.T) {
	// The example of docs/ranking.md: 118 upvotes, 12 comments, 40 stars,
	// featured 10 hours ago.
	p := paper.Paper{ID: "2606.00001", Upvotes: 118, Comments: 12, GitHubStars: 40, SubmitTime: featured(10)}
	pr := ranking.DefaultParams()
	points := 118 + 2*12 + 3*math.Log(41)
	if got := pr.Points(p); math.Abs(got-points) > 1e-9 || math.Abs(got-153.14) > 0.01 {
		t.Errorf("Points = %.4f, want %.4f (≈153.14)", got, points)
	}
	want := (points + 1) / math.Pow(12, 1.5)
	if got := pr.Score(p, now); math.Abs(got-want) > 1e-9 || math.Abs(got-3.708) > 0.001 {
		t.Errorf("Score = %.4f, want %.4f (≈3.708)", got, want)
	}
}

func TestTrendingDecaysWithAgeAndKeepsTheWindow(t *testing.T) {
	pr := ranking.DefaultParams()
	papers := []paper.Paper{
		{ID: "2606.00001", Upvotes: 300, SubmitTime: featured(70)},  // old favourite
		{ID: "2606.00002", Upvotes: 60, SubmitTime: featured(5)},    // fresh
		{ID: "2606.00003", Upvotes: 900, SubmitTime: featured(100)}, // outside the 72 h window
		{ID: "2606.00004", Upvotes: 60, SubmitTime: featured(5)},    // tie with 00002: id order
		{ID: "2606.00005", Upvotes: 1, SubmitTime: now.Add(30 * time.Minute)},
	}
	var ids []string
	for _, s := range pr.Trending(papers, now, 0) {
		ids = append(ids, s.Paper.ID)
	}
	want := []string{"2606.00002", "2606.00004", "2606.00005", "2606.00001"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("Trending order (-want +got):\n%s", diff)
	}
	if got := pr.Trending(papers, now, 2); len(got) != 2 {
		t.Errorf("Trending(limit 2) returned %d papers", len(got))
	}
}

func TestFeaturedAtFallsBack(t *testing.T) {
	pub, upd := featured(30), featured(1)
	if got := ranking.FeaturedAt(paper.Paper{PublishTime: pub, UpdateTime: upd}); !got.Equal(pub) {
		t.Errorf("FeaturedAt without submit time = %v, want the publish time %v", got, pub)
	}
	if got := ranking.FeaturedAt(paper.Paper{UpdateTime: upd}); !got.Equal(upd) {
		t.Errorf("FeaturedAt with only an update time = %v, want %v", got, upd)
	}
}

// A paper whose source told no time was stored on its featured day; every
// refresh since moved its update time on. It was featured that day, not
// at the last refresh: otherwise it would trend as new for ever.
func TestFeaturedAtFollowsTheFeaturedDay(t *testing.T) {
	stored := time.Date(2026, 6, 10, 14, 0, 0, 0, time.UTC)
	refreshed := time.Date(2026, 6, 14, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		p    paper.Paper
		want time.Time
	}{
		{"refreshed since", paper.Paper{FeaturedDay: "2026-06-10", UpdateTime: refreshed}, time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)},
		{"stored that day", paper.Paper{FeaturedDay: "2026-06-10", UpdateTime: stored}, stored},
		{"published that day", paper.Paper{FeaturedDay: "2026-06-10", PublishTime: stored, UpdateTime: refreshed}, stored},
		{"published earlier", paper.Paper{FeaturedDay: "2026-06-12", PublishTime: stored, UpdateTime: refreshed}, time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC)},
		{"submitted", paper.Paper{FeaturedDay: "2026-06-10", SubmitTime: stored, UpdateTime: refreshed}, stored},
	} {
		if got := ranking.FeaturedAt(c.p); !got.Equal(c.want) {
			t.Errorf("%s: FeaturedAt = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTokens(t *testing.T) {
	got := ranking.Tokens("Diffusion Models: fine-grained 3D Gaussians, class & bus")
	want := []string{"diffusion", "model", "fine", "grained", "3d", "gaussian", "class", "bus"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tokens (-want +got):\n%s", diff)
	}
}

func TestBM25FieldWeights(t *testing.T) {
	papers := []paper.Paper{
		{ID: "2606.00001", Title: "Diffusion models for video", Summary: "We study generation."},
		{ID: "2606.00002", Title: "A study of generation", Keywords: []string{"diffusion models"}, Summary: "We study generation."},
		{ID: "2606.00003", Title: "A study of generation", Summary: "We use diffusion models for generation."},
		{ID: "2606.00004", Title: "Robots", Summary: "Grasping objects."},
	}
	s := ranking.NewIndex(papers).Phrase("diffusion model")
	if !(s[0] > s[1] && s[1] > s[2] && s[2] > 0 && s[3] == 0) {
		t.Errorf("scores = %v, want title > keywords > abstract > no match (0)", s)
	}
	if got := ranking.NewIndex(papers).Phrase("model diffusion"); got[0] != 0 {
		t.Errorf("a phrase matched its words in another order: %v", got)
	}
}

func TestCatalogue(t *testing.T) {
	c := ranking.DefaultCatalogue()
	if n := len(c.Topics()); n < 12 || n > 20 {
		t.Errorf("default catalogue has %d topics, want about 15", n)
	}
	if tp, ok := c.Lookup("diffusion"); !ok || tp.Label != "Diffusion models" {
		t.Errorf("Lookup(diffusion) = %+v, %v", tp, ok)
	}
	good := `[{"id":"a","label":"A","phrases":["alpha"]}]`
	if c, err := ranking.ParseCatalogue([]byte(good)); err != nil || len(c.Topics()) != 1 {
		t.Errorf("ParseCatalogue(good) = %v, %v", c, err)
	}
	for name, bad := range map[string]string{
		"not json":      `{`,
		"empty":         `[]`,
		"bad id":        `[{"id":"A B","label":"A","phrases":["alpha"]}]`,
		"duplicate":     `[{"id":"a","label":"A","phrases":["x"]},{"id":"a","label":"B","phrases":["y"]}]`,
		"no label":      `[{"id":"a","label":" ","phrases":["alpha"]}]`,
		"no phrases":    `[{"id":"a","label":"A","phrases":[]}]`,
		"empty phrase":  `[{"id":"a","label":"A","phrases":["--"]}]`,
		"unknown field": `[{"id":"a","label":"A","phrases":["x"],"colour":"red"}]`,
	} {
		if _, err := ranking.ParseCatalogue([]byte(bad)); err == nil {
			t.Errorf("ParseCatalogue(%s) succeeded, want an error", name)
		}
	}
}

func window() []paper.Paper {
	return []paper.Paper{
		{ID: "2606.00001", Title: "Scaling language agents", Upvotes: 200, SubmitTime: featured(3)},
		{ID: "2606.00002", Title: "Better diffusion models", Upvotes: 50, SubmitTime: featured(3)},
		{ID: "2606.00003", Title: "Robot manipulation at scale", Upvotes: 120, SubmitTime: featured(3)},
		{ID: "2606.00004", Title: "Fast video diffusion", Upvotes: 10, Comments: 4, SubmitTime: featured(3)},
		{ID: "2606.00005", Title: "A benchmark", Upvotes: 90, SubmitTime: featured(3)},
	}
}

func ids(picks []ranking.Pick) (forYou, also []string) {
	for _, p := range picks {
		if p.ForYou {
			forYou = append(forYou, p.Paper.ID)
		} else {
			also = append(also, p.Paper.ID)
		}
	}
	return forYou, also
}

func none(string) bool { return false }

func TestPickPureTrendingWithoutTopics(t *testing.T) {
	r := ranking.NewRanker(ranking.DefaultParams(), ranking.DefaultCatalogue(), window(), now)
	forYou, also := ids(r.Pick(ranking.Reader{}, none, 3))
	if len(forYou) != 0 || !slices.Equal(also, []string{"2606.00001", "2606.00003", "2606.00005"}) {
		t.Errorf("Pick(no topics) = for you %v, also %v; want the top 3 trending only", forYou, also)
	}
}

func TestPickForYouThenAlsoTrending(t *testing.T) {
	r := ranking.NewRanker(ranking.DefaultParams(), ranking.DefaultCatalogue(), window(), now)
	picks := r.Pick(ranking.Reader{Topics: []string{"diffusion", "no-such-topic"}, Keywords: []string{"video"}}, none, 5)
	forYou, also := ids(picks)
	if !slices.Equal(forYou, []string{"2606.00004", "2606.00002"}) {
		t.Errorf("for you = %v, want the two diffusion papers, the one also matching video first", forYou)
	}
	if !slices.Equal(also, []string{"2606.00001", "2606.00003", "2606.00005"}) {
		t.Errorf("also trending = %v, want the rest by trend", also)
	}
	if want := "▲ 10 · 4 comments · matches: Diffusion models, video"; picks[0].Why != want {
		t.Errorf("why = %q, want %q", picks[0].Why, want)
	}
	if want := "▲ 200"; picks[2].Why != want {
		t.Errorf("also-trending why = %q, want %q", picks[2].Why, want)
	}
}

func TestPickLeavesOutWhatWasSent(t *testing.T) {
	r := ranking.NewRanker(ranking.DefaultParams(), ranking.DefaultCatalogue(), window(), now)
	sent := map[string]bool{"2606.00001": true, "2606.00002": true, "2606.00004": true}
	forYou, also := ids(r.Pick(ranking.Reader{Topics: []string{"diffusion"}}, func(id string) bool { return sent[id] }, 10))
	if len(forYou) != 0 || !slices.Equal(also, []string{"2606.00003", "2606.00005"}) {
		t.Errorf("Pick = for you %v, also %v; want only the unsent papers", forYou, also)
	}
	all := func(string) bool { return true }
	if got := r.Pick(ranking.Reader{}, all, 10); len(got) != 0 {
		t.Errorf("Pick with everything sent = %d papers, want none (nothing new)", len(got))
	}
}

func TestMatching(t *testing.T) {
	r := ranking.NewRanker(ranking.DefaultParams(), ranking.DefaultCatalogue(), window(), now)
	var got []string
	for _, s := range r.Matching([]string{"robotics"}) {
		got = append(got, s.Paper.ID)
	}
	if !slices.Equal(got, []string{"2606.00003"}) {
		t.Errorf("Matching(robotics) = %v", got)
	}
}
