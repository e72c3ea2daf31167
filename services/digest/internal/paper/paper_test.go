package paper_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

func TestNormalizeID(t *testing.T) {
	tests := []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{"2606.13681", "2606.13681", true},
		{"2606.13681v2", "2606.13681", true},
		{"0704.0001", "0704.0001", true},
		{"hep-th/9901001", "hep-th/9901001", true},
		{"math.GT/0309136v1", "math.GT/0309136", true},
		{"cond-mat/0102536", "cond-mat/0102536", true},
		{"", "", false},
		{"abc", "", false},
		{"2606.136", "", false},
		{"2606.136812", "", false},
		{"26061.3681", "", false},
		{" 2606.13681", "", false},
		{"2606.13681\n", "", false},
		{"hep-th/990100", "", false},
		{"../2606.13681", "", false},
		{"HEP-TH/9901001", "", false},
		{"2606.13681vv2", "", false},
	}
	for _, tt := range tests {
		got, ok := paper.NormalizeID(tt.raw)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("NormalizeID(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.wantOK)
		}
		if ok && !paper.ValidID(got) {
			t.Errorf("ValidID(%q) = false for a normalised id", got)
		}
	}
	if paper.ValidID("2606.13681v2") {
		t.Error("ValidID accepts a versioned id; stored ids have no version")
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  a  b\t\nc  ", "a b c"},
		{"a\u00a0\u2003b", "a b"},
		{"a\x00b\x1bc\u0085d", "abc d"},
		{"left\u202eright\u2066", "leftright"},
		{"\u200bzero\ufeffwidth", "zerowidth"},
		{"日本語 テキスト", "日本語 テキスト"},
		// A hard wrap after a hyphen inside a word joins the word.
		{"fine-\ngrained", "fine-grained"},
		{"fine-\n    grained control", "fine-grained control"},
		{"state-of-the-\r\nart", "state-of-the-art"},
		{"GPT-\n4", "GPT-4"},
		{"Übergangs-\nphase", "Übergangs-phase"},
		// Not inside a word, or not a line break: a space stays.
		{"fine- grained", "fine- grained"},
		{"results -\nwhich", "results - which"},
		{"a-\n(b)", "a- (b)"},
		{"\nfine- grained", "fine- grained"},
		{"end-\n", "end-"},
	}
	for _, tt := range tests {
		if got := paper.CleanText(tt.in); got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURL(t *testing.T) {
	p := paper.Paper{ID: "2606.13681"}
	if got, want := p.URL(), "https://huggingface.co/papers/2606.13681"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
}

func TestMerge(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 6, d, 0, 0, 0, 0, time.UTC) }
	stored := paper.Paper{
		ID: "2606.00001", Title: "Old title", Summary: "Old abstract", Authors: []string{"A"},
		Upvotes: 10, Comments: 2, GitHubStars: 7, GitHubRepo: "https://github.com/a/b",
		ProjectPage: "https://a.example", AISummary: "old ai", Keywords: []string{"k"},
		PublishTime: day(1), SubmitTime: day(12), FeaturedDay: "2026-06-12",
		Counted: paper.CountAll, UpdateTime: day(12),
	}
	tests := []struct {
		name string
		next paper.Paper
		want paper.Paper
	}{
		{
			name: "daily list refresh: counts move, absent stars are kept",
			next: paper.Paper{ID: "2606.00001", Title: "New title", Upvotes: 50, Comments: 4,
				SubmitTime: day(12), FeaturedDay: "2026-06-12", Counted: paper.CountUpvotes | paper.CountComments, UpdateTime: day(13)},
			want: paper.Paper{ID: "2606.00001", Title: "New title", Summary: "Old abstract", Authors: []string{"A"},
				Upvotes: 50, Comments: 4, GitHubStars: 7, GitHubRepo: "https://github.com/a/b",
				ProjectPage: "https://a.example", AISummary: "old ai", Keywords: []string{"k"},
				PublishTime: day(1), SubmitTime: day(12), FeaturedDay: "2026-06-12", Counted: paper.CountAll, UpdateTime: day(13)},
		},
		{
			name: "stars reported as 0 are 0",
			next: paper.Paper{ID: "2606.00001", Title: "Old title", GitHubStars: 0, Counted: paper.CountGitHubStars,
				SubmitTime: day(12), FeaturedDay: "2026-06-12", UpdateTime: day(13)},
			want: func() paper.Paper { p := stored; p.GitHubStars = 0; p.UpdateTime = day(13); return p }(),
		},
		{
			name: "arXiv feed: no counts, estimated day does not replace the daily list's",
			next: paper.Paper{ID: "2606.00001", Title: "Old title", Summary: "New abstract", Authors: []string{"A", "B"},
				PublishTime: day(2), FeaturedDay: "2026-06-02", UpdateTime: day(14)},
			want: func() paper.Paper {
				p := stored
				p.Summary, p.Authors, p.PublishTime, p.UpdateTime = "New abstract", []string{"A", "B"}, day(2), day(14)
				return p
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, paper.Merge(stored, tt.next)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a daily list replaces an estimated day", func(t *testing.T) {
		estimated := paper.Paper{ID: "2606.00001", Title: "T", PublishTime: day(2), FeaturedDay: "2026-06-02"}
		listed := paper.Paper{ID: "2606.00001", Title: "T", SubmitTime: day(12), FeaturedDay: "2026-06-12"}
		if got := paper.Merge(estimated, listed).FeaturedDay; got != "2026-06-12" {
			t.Errorf("FeaturedDay = %q, want 2026-06-12", got)
		}
	})
}

func TestEstimateFeaturedDay(t *testing.T) {
	now := time.Date(2026, 6, 14, 23, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		p    paper.Paper
		want string
	}{
		{"kept", paper.Paper{FeaturedDay: "2026-06-01", SubmitTime: now}, "2026-06-01"},
		{"submit day", paper.Paper{SubmitTime: time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC)}, "2026-06-12"},
		{"publish day in UTC", paper.Paper{PublishTime: time.Date(2026, 6, 10, 22, 0, 0, 0, time.FixedZone("x", -4*3600))}, "2026-06-11"},
		{"import day", paper.Paper{}, "2026-06-14"},
	}
	for _, tt := range tests {
		p := tt.p
		p.EstimateFeaturedDay(now)
		if p.FeaturedDay != tt.want {
			t.Errorf("%s: FeaturedDay = %q, want %q", tt.name, p.FeaturedDay, tt.want)
		}
	}
}

func TestCheckTimeAndParseDay(t *testing.T) {
	now := time.Date(2026, 6, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		day    string
		wantOK bool
	}{
		{"2026-06-14", true},
		{"1991-08-14", true},
		{"2026-06-16", true},
		{"2026-06-17", false},
		{"9999-12-31", false},
		{"1990-12-31", false},
		{"0001-01-01", false},
		{"2026-02-30", false},
		{"2026-6-1", false},
		{"", false},
		{"2026-06-14T00:00:00Z", false},
	}
	for _, tt := range tests {
		if _, ok := paper.ParseDay(tt.day, now); ok != tt.wantOK {
			t.Errorf("ParseDay(%q) ok = %v, want %v", tt.day, ok, tt.wantOK)
		}
	}
	if got := paper.CheckTime(time.Time{}, now); got != "" {
		t.Errorf("CheckTime(zero) = %q, want \"\" (unknown is fine)", got)
	}
}
