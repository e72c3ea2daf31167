package hfdaily_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/hfdaily"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// now is when the tests fetched their documents.
var now = time.Date(2026, 6, 14, 12, 0, 0, 0, time.UTC)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse2026Shape(t *testing.T) {
	papers, err := hfdaily.ParseAt(readFixture(t, "hf-daily-papers-2026-06-12.json"), now)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(papers) != 30 {
		t.Fatalf("Parse returned %d papers, want 30", len(papers))
	}
	if got, want := papers[0].ID, "2606.00467"; got != want {
		t.Errorf("first paper id = %q, want %q (document order)", got, want)
	}
	var evo paper.Paper
	for _, p := range papers {
		if p.ID == "2606.13681" {
			evo = p
		}
	}
	want := paper.Paper{
		ID:    "2606.13681",
		Title: "EvoArena: Tracking Memory Evolution for Robust LLM Agents in Dynamic Environments",
		Authors: []string{"Jundong Xu", "Qingchuan Li", "Jiaying Wu", "Yihuai Lan", "Shuyue Stella Li",
			"Huichi Zhou", "Bowen Jiang", "Lei Wang", "Jun Wang", "Anh Tuan Luu", "Caiming Xiong",
			"Hae Won Park", "Bryan Hooi", "Zhiyuan Hu"},
		Upvotes:     118,
		Comments:    3,
		GitHubStars: 9,
		GitHubRepo:  "https://github.com/Aiden0526/EvoArena",
		ProjectPage: "https://aiden0526.github.io/EvoArena/",
		AISummary:   "EvoArena benchmark and EvoMem memory paradigm address the challenge of dynamic environments in LLM agents by modeling progressive updates and structured memory evolution, showing improved performance on evolving tasks.",
		Keywords: []string{"large language model agents", "EvoArena", "EvoMem", "memory evolution",
			"environment changes", "progressive updates", "terminal domain", "software domain",
			"social domain", "chain-level accuracy", "mechanistic analysis"},
		PublishTime: time.Date(2026, 6, 11, 0, 0, 0, 0, time.UTC),
		SubmitTime:  time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC),
		FeaturedDay: "2026-06-12",
		Counted:     paper.CountAll,
	}
	if diff := cmp.Diff(want, evo, cmpopts.IgnoreFields(paper.Paper{}, "Summary")); diff != "" {
		t.Errorf("EvoArena paper (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(evo.Summary, "Large language model (LLM) agents have achieved strong performance") {
		t.Errorf("EvoArena summary = %.80q…, want the abstract", evo.Summary)
	}
	var withStars int
	for _, p := range papers {
		if p.FeaturedDay != "2026-06-12" {
			t.Errorf("paper %s featured on %q, want 2026-06-12 (paper.submittedOnDailyAt)", p.ID, p.FeaturedDay)
		}
		if p.Counted.Has(paper.CountGitHubStars) {
			withStars++
		} else if p.GitHubStars != 0 {
			t.Errorf("paper %s: stars %d without githubStars", p.ID, p.GitHubStars)
		}
		if p.Title == "" || p.Summary == "" || len(p.Authors) == 0 {
			t.Errorf("paper %s lost a field: title %q, %d summary bytes, %d authors", p.ID, p.Title, len(p.Summary), len(p.Authors))
		}
	}
	// 16 of the 30 entries carry githubStars; the others' stars are unknown.
	if withStars != 16 {
		t.Errorf("%d papers with githubStars counted, want 16", withStars)
	}
}

func TestParse2024Shape(t *testing.T) {
	papers, err := hfdaily.ParseAt(readFixture(t, "hf-daily-papers-2024-shape.json"), now)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []paper.Paper{{
		ID:          "2403.05530",
		Title:       "Gemini 1.5: Unlocking multimodal understanding across millions of tokens of context",
		Summary:     "In this report, we present the latest model of the Gemini family, Gemini 1.5 Pro, a highly compute-efficient multimodal mixture-of-experts model.",
		Authors:     []string{"Gemini Team", "Petko Georgiev"},
		Upvotes:     42,
		Comments:    4,
		PublishTime: time.Date(2024, 3, 8, 18, 54, 20, 0, time.UTC),
		SubmitTime:  time.Date(2024, 3, 11, 0, 0, 0, 0, time.UTC),
		FeaturedDay: "2024-03-11",
		Counted:     paper.CountUpvotes | paper.CountComments,
	}, {
		ID:          "2403.04132",
		Title:       "Title only on the entry",
		Summary:     "Summary only on the entry.",
		Authors:     []string{"Someone Else"},
		Upvotes:     17,
		Comments:    1,
		PublishTime: time.Date(2024, 3, 7, 0, 0, 0, 0, time.UTC),
		SubmitTime:  time.Date(2024, 3, 11, 0, 0, 0, 0, time.UTC),
		FeaturedDay: "2024-03-11",
		Counted:     paper.CountUpvotes | paper.CountComments,
	}, {
		ID:      "hep-th/9901001",
		Title:   "An old-style arXiv id, title only on the paper",
		Summary: "Summary only on the paper.",
		Upvotes: 3,
		Counted: paper.CountUpvotes | paper.CountComments,
	}}
	if diff := cmp.Diff(want, papers); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseTolerates(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []paper.Paper
	}{{
		name: "empty array",
		doc:  `[]`,
		want: nil,
	}, {
		name: "duplicate ids keep the last data at the first position",
		doc: `[{"paper":{"id":"2606.00001","title":"A old","upvotes":1}},
		       {"paper":{"id":"2606.00002","title":"B","upvotes":2}},
		       {"paper":{"id":"2606.00001v3","title":"A new","upvotes":9}}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "A new", Upvotes: 9, Counted: paper.CountUpvotes}, {ID: "2606.00002", Title: "B", Upvotes: 2, Counted: paper.CountUpvotes}},
	}, {
		name: "negative, fractional, null and huge counts are clamped",
		doc:  `[{"paper":{"id":"2606.00001","title":"T","upvotes":-5,"githubStars":1e12},"numComments":2.7},{"paper":{"id":"2606.00002","title":"U","upvotes":null}}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "T", Comments: 2, GitHubStars: paper.MaxCount, Counted: paper.CountAll}, {ID: "2606.00002", Title: "U"}},
	}, {
		name: "non-https links are dropped",
		doc:  `[{"paper":{"id":"2606.00001","title":"T","githubRepo":"http://github.com/a/b","projectPage":"javascript:alert(1)"}}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "T"}},
	}, {
		name: "control characters and bidi overrides are removed, whitespace collapsed",
		doc:  `[{"paper":{"id":"2606.00001","title":"  A\u0000B\u202e C\r\n\tD  ","authors":[{"name":"X\u0007Y"}]}}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "AB C D", Authors: []string{"XY"}}},
	}, {
		name: "unknown fields and wrong-typed unknown fields are ignored",
		doc:  `[{"paper":{"id":"2606.00001","title":"T","mediaUrls":[1,{"a":[]}],"organization":"x"},"isAuthorParticipating":"yes"}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "T"}},
	}, {
		name: "author lists beyond the limit are cut",
		doc:  `[{"paper":{"id":"2606.00001","title":"T","authors":[` + strings.Repeat(`{"name":"N"},`, paper.MaxAuthors+50) + `{"name":"Last"}]}}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "T", Authors: repeat("N", paper.MaxAuthors)}},
	}, {
		name: "hard-wrapped 2024 text: a hyphen at a line break joins the word",
		doc:  `[{"paper":{"id":"2606.00001","summary":"a fine-\n  grained,\nhard-\nwrapped text"},"title":"Fine-\nGrained\n Control","publishedAt":"2026-06-12T00:00:00.000Z"}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "Fine-Grained Control", Summary: "a fine-grained, hard-wrapped text",
			SubmitTime: time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), FeaturedDay: "2026-06-12"}},
	}, {
		name: "2026 shape: the entry's publishedAt is not the featured day",
		doc: `[{"paper":{"id":"2606.00001","title":"T","submittedOnDailyAt":"2026-06-12T00:00:00.000Z"},"publishedAt":"2026-06-01T20:00:00.000Z"},
		       {"paper":{"id":"2606.00002","title":"U"},"publishedAt":"2026-06-01T20:00:00.000Z"}]`,
		want: []paper.Paper{
			{ID: "2606.00001", Title: "T", SubmitTime: time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), FeaturedDay: "2026-06-12"},
			{ID: "2606.00002", Title: "U"},
		},
	}, {
		name: "every optional field absent",
		doc:  `[{"paper":{"id":"2606.00001","title":"T"}}]`,
		want: []paper.Paper{{ID: "2606.00001", Title: "T"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hfdaily.ParseAt([]byte(tt.doc), now)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestParseRejects(t *testing.T) {
	valid := `{"paper":{"id":"2606.00001","title":"T"}}`
	manyEntries := "[" + strings.Repeat(valid+",", hfdaily.MaxEntries) + valid + "]"
	tests := []struct {
		name string
		doc  string
		want string // a substring of the violation's description
	}{
		{"empty document", ``, "not JSON"},
		{"not JSON", `hello`, "not JSON"},
		{"JSON object", `{"paper":{"id":"2606.00001","title":"T"}}`, "not a JSON array"},
		{"JSON string", `"[]"`, "not a JSON array"},
		{"truncated", `[` + valid + `,`, "not JSON"},
		{"trailing data", `[]]`, "after the array"},
		{"two arrays", `[][]`, "after the array"},
		{"invalid UTF-8", "[{\"paper\":{\"id\":\"2606.00001\",\"title\":\"\xff\"}}]", "UTF-8"},
		{"deeply nested", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), "nested deeper"},
		{"nested in an ignored field", `[{"paper":{"id":"2606.00001","title":"T","x":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}}]`, "nested deeper"},
		{"too many entries", manyEntries, "more than 2000 entries"},
		{"oversized", `[` + `"` + strings.Repeat("a", hfdaily.MaxBytes) + `"]`, "limit is 8388608"},
		{"entry not an object", `[` + valid + `,42]`, "entry 1: is a JSON number, want an object"},
		{"paper missing", `[{"title":"T"}]`, "entry 0: paper is missing"},
		{"id missing", `[{"paper":{"title":"T"}}]`, "entry 0: paper.id is missing"},
		{"bad id", `[` + valid + `,` + valid + `,` + valid + `,{"paper":{"id":"abc","title":"T"}}]`, `entry 3: paper.id "abc" is not an arXiv id`},
		{"id with a path", `[{"paper":{"id":"2606.00001/../x","title":"T"}}]`, "not an arXiv id"},
		{"id as a number", `[{"paper":{"id":2606.00001,"title":"T"}}]`, "entry 0: paper.id is a JSON number, want a string"},
		{"empty title", `[{"paper":{"id":"2606.00001","title":"  \n "}}]`, "title is empty"},
		{"no title anywhere", `[{"paper":{"id":"2606.00001"}}]`, "title is empty"},
		{"title too long", `[{"paper":{"id":"2606.00001","title":"` + strings.Repeat("é", paper.MaxTitleRunes+1) + `"}}]`, "title is 1001 characters"},
		{"summary too long", `[{"paper":{"id":"2606.00001","title":"T","summary":"` + strings.Repeat("x", paper.MaxSummaryRunes+1) + `"}}]`, "summary is 20001 characters"},
		{"author name too long", `[{"paper":{"id":"2606.00001","title":"T","authors":[{"name":"` + strings.Repeat("x", paper.MaxAuthorRunes+1) + `"}]}}]`, "authors[0].name is 201 characters"},
		{"upvotes as a string", `[{"paper":{"id":"2606.00001","title":"T","upvotes":"5"}}]`, "paper.upvotes is a JSON string, want a number"},
		{"bad time", `[{"paper":{"id":"2606.00001","title":"T","publishedAt":"yesterday"}}]`, `publishedAt: "yesterday" is not an RFC 3339 time`},
		{"far-future featured day", `[{"paper":{"id":"2606.00001","title":"T","submittedOnDailyAt":"9999-12-31T00:00:00Z"}}]`, `paper 2606.00001: paper.submittedOnDailyAt: "9999-12-31T00:00:00Z" is more than two days in the future`},
		{"featured day before arXiv", `[{"paper":{"id":"2606.00001","title":"T"},"publishedAt":"0001-01-01T00:00:00Z"}]`, `publishedAt: "0001-01-01T00:00:00Z" is before 1991`},
		{"publish time next week", `[{"paper":{"id":"2606.00001","title":"T","publishedAt":"2026-06-21T00:00:00Z"}}]`, `paper.publishedAt: "2026-06-21T00:00:00Z" is more than two days in the future`},
		{"HTML instead of JSON", `<!DOCTYPE html><html><body>Rate limited</body></html>`, "not JSON"},
		{"too many keywords", `[{"paper":{"id":"2606.00001","title":"T","ai_keywords":[` + strings.Repeat(`"k",`, paper.MaxKeywords) + `"k"]}}]`, "101 ai_keywords"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			papers, err := hfdaily.ParseAt([]byte(tt.doc), now)
			if err == nil {
				t.Fatalf("Parse = %d papers, nil error; want an error containing %q", len(papers), tt.want)
			}
			if papers != nil {
				t.Errorf("Parse returned %d papers with the error; want none", len(papers))
			}
			var verr *validation.Error
			if !errors.As(err, &verr) {
				t.Fatalf("Parse error %v is a %T, want *validation.Error", err, err)
			}
			for _, v := range verr.Violations {
				if v.Field != hfdaily.Field {
					t.Errorf("violation on field %q, want %q", v.Field, hfdaily.Field)
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.want)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("Parse error is %d bytes; want a short message", len(err.Error()))
			}
		})
	}
}

func TestParseListsSeveralProblems(t *testing.T) {
	var entries []string
	for i := range 15 {
		entries = append(entries, fmt.Sprintf(`{"paper":{"id":"bad-%d","title":"T"}}`, i))
	}
	_, err := hfdaily.ParseAt([]byte("["+strings.Join(entries, ",")+"]"), now)
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatalf("Parse error = %v, want *validation.Error", err)
	}
	var got []string
	for _, v := range verr.Violations {
		got = append(got, v.Description)
	}
	if len(got) != 11 || !strings.HasPrefix(got[0], "entry 0:") || got[10] != "and 5 more invalid entries" {
		t.Errorf("violations = %q, want the first 10 entries and a count of the rest", got)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// satisfies the bounds every stored paper must.
func FuzzParse(f *testing.F) {
	f.Add(readFixture(f, "hf-daily-papers-2024-shape.json"))
	f.Add([]byte(`[{"paper":{"id":"2606.00001v2","title":"T","upvotes":-1,"authors":[{"name":"A","hidden":true}]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		papers, err := hfdaily.ParseAt(data, now)
		if err != nil {
			var verr *validation.Error
			if !errors.As(err, &verr) || len(verr.Violations) == 0 {
				t.Fatalf("Parse error %v is not a *validation.Error with violations", err)
			}
			if papers != nil {
				t.Fatalf("Parse returned papers with an error")
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted invalid JSON %q", data)
		}
		seen := map[string]bool{}
		for _, p := range papers {
			if !paper.ValidID(p.ID) {
				t.Errorf("accepted id %q", p.ID)
			}
			if seen[p.ID] {
				t.Errorf("id %q returned twice", p.ID)
			}
			seen[p.ID] = true
			if n := utf8.RuneCountInString(p.Title); n == 0 || n > paper.MaxTitleRunes || p.Title != paper.CleanText(p.Title) {
				t.Errorf("accepted title %q", p.Title)
			}
			if utf8.RuneCountInString(p.Summary) > paper.MaxSummaryRunes || len(p.Authors) > paper.MaxAuthors {
				t.Errorf("paper %s exceeds a bound", p.ID)
			}
			for _, a := range p.Authors {
				if a == "" || utf8.RuneCountInString(a) > paper.MaxAuthorRunes {
					t.Errorf("accepted author %q", a)
				}
			}
			if p.FeaturedDay != "" {
				if _, ok := paper.ParseDay(p.FeaturedDay, now); !ok {
					t.Errorf("paper %s: featured day %q", p.ID, p.FeaturedDay)
				}
			}
			if !p.Counted.Has(paper.CountGitHubStars) && p.GitHubStars != 0 {
				t.Errorf("paper %s: %d stars not reported", p.ID, p.GitHubStars)
			}
			if p.Upvotes < 0 || p.Comments < 0 || p.GitHubStars < 0 {
				t.Errorf("paper %s has a negative count", p.ID)
			}
			for _, u := range []string{p.GitHubRepo, p.ProjectPage} {
				if u != "" && !strings.HasPrefix(u, "https://") {
					t.Errorf("accepted link %q", u)
				}
			}
		}
	})
}
