package arxiv_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/arxiv"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

var now = time.Date(2026, 6, 14, 12, 0, 0, 0, time.UTC)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSample(t *testing.T) {
	papers, err := arxiv.Parse(readFixture(t, "arxiv-atom-sample.xml"), now)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(papers) != 1 {
		t.Fatalf("Parse = %d papers, want 1", len(papers))
	}
	p := papers[0]
	want := paper.Paper{
		ID:          "2606.13677",
		Title:       "Mana: Dexterous Manipulation of Articulated Tools",
		Authors:     []string{"Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu"},
		ProjectPage: "https://zhaohengyin.github.io/mana",
		PublishTime: time.Date(2026, 6, 11, 17, 59, 49, 0, time.UTC),
	}
	got := p
	got.Summary = ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paper (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(p.Summary, "Articulated tool manipulation remains") || !strings.Contains(p.Summary, "(<1 minute per tool)") {
		t.Errorf("summary = %.80q…, want the abstract with entities decoded", p.Summary)
	}
	if p.Counted != 0 {
		t.Errorf("Counted = %v; an arXiv feed reports no counts", p.Counted)
	}
}

func TestParseWrapped(t *testing.T) {
	papers, err := arxiv.Parse(readFixture(t, "arxiv-atom-wrapped.xml"), now)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []paper.Paper{{
		ID:          "2606.10001",
		Title:       "Fine-Grained Control of Diffusion Models via Token-Level Guidance",
		Summary:     "We study fine-grained control of text-to-image diffusion models. Our method is training-free & fast.",
		Authors:     []string{"Ada Lovelace", "Alan Turing"},
		GitHubRepo:  "https://github.com/example/tokguide",
		ProjectPage: "https://example.github.io/tokguide/",
		PublishTime: time.Date(2026, 6, 10, 17, 59, 49, 0, time.UTC),
	}, {
		ID:          "hep-th/9901001",
		Title:       "An old-style identifier",
		Summary:     "Old.",
		Authors:     []string{"Someone"},
		PublishTime: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC),
	}, {
		ID:    "2606.10002",
		Title: "No abstract, no authors",
	}}
	if diff := cmp.Diff(want, papers); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseEmptyFeed(t *testing.T) {
	papers, err := arxiv.Parse([]byte(`<feed xmlns="http://www.w3.org/2005/Atom"><title>none</title></feed>`), now)
	if err != nil || len(papers) != 0 {
		t.Errorf("Parse(empty feed) = %v, %v; want no papers, no error", papers, err)
	}
}

func feed(entries ...string) string {
	return `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">` + strings.Join(entries, "") + `</feed>`
}

func TestParseRejects(t *testing.T) {
	valid := `<entry><id>http://arxiv.org/abs/2606.00001v1</id><title>T</title></entry>`
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty", ``, "document is empty"},
		{"JSON instead of XML", `[{"paper":{}}]`, "not XML"},
		{"HTML page", `<!DOCTYPE html><html><body>busy</body></html>`, "DOCTYPE"},
		{"other root", `<rss><channel/></rss>`, "root element is <rss>"},
		{"Atom root in no namespace", `<feed><entry/></feed>`, "root element is <feed>"},
		{"truncated", feed(valid)[:60], "not XML"},
		{"unclosed feed", strings.TrimSuffix(feed(valid), "</feed>"), "truncated"},
		{"trailing data", feed(valid) + `<feed/>`, "after the feed"},
		{"entity bomb", `<!DOCTYPE feed [<!ENTITY a "aaaa">]><feed xmlns="http://www.w3.org/2005/Atom"/>`, "DOCTYPE"},
		{"unknown entity", feed(`<entry><id>http://arxiv.org/abs/2606.00001</id><title>&xxe;</title></entry>`), "not XML"},
		{"invalid UTF-8", feed("<entry><title>\xff</title></entry>"), "UTF-8"},
		{"oversized", feed(strings.Repeat(" ", arxiv.MaxBytes)), "limit is 8388608"},
		{"too many entries", feed(strings.Repeat(valid, arxiv.MaxEntries+1)), "more than 2000 entries"},
		{"id missing", feed(valid, `<entry><title>T</title></entry>`), "entry 1: id is missing"},
		{"id not an abstract URL", feed(`<entry><id>http://evil.example/abs/2606.00001</id><title>T</title></entry>`), `entry 0: id "http://evil.example/abs/2606.00001" is not an arXiv abstract URL`},
		{"id not an arXiv id", feed(`<entry><id>http://arxiv.org/abs/../../etc</id><title>T</title></entry>`), "not an arXiv abstract URL"},
		{"title empty", feed(`<entry><id>http://arxiv.org/abs/2606.00001</id><title> </title></entry>`), "paper 2606.00001: title is empty"},
		{"title too long", feed(`<entry><id>http://arxiv.org/abs/2606.00001</id><title>` + strings.Repeat("x", paper.MaxTitleRunes+1) + `</title></entry>`), "title is 1001 characters"},
		{"bad time", feed(`<entry><id>http://arxiv.org/abs/2606.00001</id><title>T</title><published>last week</published></entry>`), `published "last week" is not an RFC 3339 time`},
		{"absurd time", feed(`<entry><id>http://arxiv.org/abs/2606.00001</id><title>T</title><published>9999-12-31T00:00:00Z</published></entry>`), "more than two days in the future"},
		{"API error entry", feed(`<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id><title>Error</title><summary>incorrect id format for 1234</summary></entry>`), `the arXiv API answered with an error: "incorrect id format for 1234"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			papers, err := arxiv.Parse([]byte(tt.doc), now)
			if err == nil {
				t.Fatalf("Parse = %d papers, nil error; want an error containing %q", len(papers), tt.want)
			}
			if papers != nil {
				t.Errorf("Parse returned %d papers with the error", len(papers))
			}
			var verr *validation.Error
			if !errors.As(err, &verr) {
				t.Fatalf("Parse error %v is a %T, want *validation.Error", err, err)
			}
			for _, v := range verr.Violations {
				if v.Field != arxiv.Field {
					t.Errorf("violation on field %q, want %q", v.Field, arxiv.Field)
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseListsSeveralProblems(t *testing.T) {
	var entries []string
	for i := range 13 {
		entries = append(entries, fmt.Sprintf(`<entry><id>http://arxiv.org/abs/bad-%d</id><title>T</title></entry>`, i))
	}
	_, err := arxiv.Parse([]byte(feed(entries...)), now)
	var verr *validation.Error
	if !errors.As(err, &verr) || len(verr.Violations) != 11 || verr.Violations[10].Description != "and 3 more invalid entries" {
		t.Errorf("Parse error = %v, want 10 entries listed and a count of the rest", err)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// satisfies the bounds every stored paper must.
func FuzzParse(f *testing.F) {
	f.Add(readFixture(f, "arxiv-atom-sample.xml"))
	f.Add(readFixture(f, "arxiv-atom-wrapped.xml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		papers, err := arxiv.Parse(data, now)
		if err != nil {
			var verr *validation.Error
			if !errors.As(err, &verr) || len(verr.Violations) == 0 {
				t.Fatalf("Parse error %v is not a *validation.Error with violations", err)
			}
			if papers != nil {
				t.Fatal("Parse returned papers with an error")
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range papers {
			if !paper.ValidID(p.ID) || seen[p.ID] {
				t.Errorf("accepted id %q (seen %v)", p.ID, seen[p.ID])
			}
			seen[p.ID] = true
			if n := utf8.RuneCountInString(p.Title); n == 0 || n > paper.MaxTitleRunes || p.Title != paper.CleanText(p.Title) {
				t.Errorf("accepted title %q", p.Title)
			}
			if p.Summary != paper.CleanText(p.Summary) || utf8.RuneCountInString(p.Summary) > paper.MaxSummaryRunes {
				t.Errorf("accepted summary %q", p.Summary)
			}
			if len(p.Authors) > paper.MaxAuthors || p.Counted != 0 {
				t.Errorf("paper %s: %d authors, counted %v", p.ID, len(p.Authors), p.Counted)
			}
			for _, u := range []string{p.GitHubRepo, p.ProjectPage} {
				if u != "" && (!strings.HasPrefix(u, "https://") || len(u) > paper.MaxURLBytes) {
					t.Errorf("accepted link %q", u)
				}
			}
			if paper.CheckTime(p.PublishTime, now) != "" {
				t.Errorf("accepted time %v", p.PublishTime)
			}
		}
	})
}
