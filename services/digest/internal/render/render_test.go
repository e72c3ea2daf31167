package render_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/hfdaily"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/render"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const postal = "paperroute, 1 Example Street, 00000 Example City"

var editionDate = time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC)

// edition is the 12 June edition of papers, each with its trending "why".
func edition(papers ...paper.Paper) digest.Edition {
	ed := digest.Edition{Date: editionDate}
	for _, p := range papers {
		ed.Cards = append(ed.Cards, digest.Card{Paper: p, Why: ranking.Why(p, nil)})
	}
	return ed
}

// variable matches a sender template variable, as the sender reads them
// (services/sender/internal/mailtemplate), or an escaped "\{{" (group 1
// empty), which is text.
var variable = regexp.MustCompile(`\\\{\{|\{\{([a-z][a-z0-9_]{0,63})\}\}`)

func newRenderer(t *testing.T) *render.Renderer {
	t.Helper()
	r, err := render.New(postal)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// topTen is the fixture's ten most upvoted papers, as the digest picks them.
func topTen(t *testing.T) []paper.Paper {
	t.Helper()
	data, err := os.ReadFile("../hfdaily/testdata/hf-daily-papers-2026-06-12.json")
	if err != nil {
		t.Fatal(err)
	}
	papers, err := hfdaily.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(papers, func(a, b paper.Paper) int {
		if a.Upvotes != b.Upvotes {
			return b.Upvotes - a.Upvotes
		}
		return strings.Compare(a.ID, b.ID)
	})
	return papers[:10]
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got); run go test -update if the change is intended:\n%s", name, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	msg, err := newRenderer(t).Render(edition(topTen(t)...))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if got, want := msg.Subject, "Trending papers · Fri 12 Jun · EvoArena: Tracking Memory Evolution for Robust LLM Agents…"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	golden(t, "digest.html.golden", msg.HTML)
	golden(t, "digest.txt.golden", msg.Text)
}

// TestRenderGoldenForYou renders a personalised weekly digest: "For you"
// cards with what they matched, then "Also trending".
func TestRenderGoldenForYou(t *testing.T) {
	ed := edition(topTen(t)[:6]...)
	ed.Weekly = true
	for i := range 3 {
		ed.Cards[i].ForYou = true
		ed.Cards[i].Why = ranking.Why(ed.Cards[i].Paper, []string{"Large language models", "agents"})
	}
	msg, err := newRenderer(t).Render(ed)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if got, want := msg.Subject, "Trending papers of the week · Fri 12 Jun · EvoArena: Tracking Memory Evolution for Robust LLM Agents…"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	checkTemplate(t, msg)
	golden(t, "digest-foryou.html.golden", msg.HTML)
	golden(t, "digest-foryou.txt.golden", msg.Text)
}

func TestRenderContent(t *testing.T) {
	papers := topTen(t)
	msg, err := newRenderer(t).Render(edition(papers...))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for _, want := range []string{
		`<a href="https://huggingface.co/papers/2606.13681"`,
		"EvoArena: Tracking Memory Evolution for Robust LLM Agents in Dynamic Environments</a>",
		"Jundong Xu, Qingchuan Li, Jiaying Wu, Yihuai Lan, Shuyue Stella Li et\u00a0al.",
		"▲ 118 · 3 comments · ★ 9 on GitHub",
		`<a href="https://github.com/Aiden0526/EvoArena"`,
		"EvoArena benchmark and EvoMem memory paradigm",
		"width=\"600\"",
		postal,
		">Unsubscribe</a>",
		">Manage preferences</a>",
		`<a href="https://arxiv.org/abs/2606.13681"`,
		"Top: EvoArena",
		"Friday 12 June 2026",
		"Today&#39;s trending papers",
	} {
		if !strings.Contains(msg.HTML, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, want := range []string{
		"1. EvoArena: Tracking Memory Evolution for Robust LLM Agents in Dynamic\n   Environments\n   https://huggingface.co/papers/2606.13681\n",
		"Unsubscribe: {{unsubscribe_url}}\n",
		"Manage preferences: {{manage_url}}\n",
		"   arXiv: https://arxiv.org/abs/2606.13681\n",
		postal,
	} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("Text lacks %q", want)
		}
	}
	for i, p := range papers {
		if got := strings.Index(msg.HTML, `href="`+p.URL()+`"`); got < 0 {
			t.Errorf("HTML lacks paper %d (%s)", i, p.ID)
		}
	}
	checkTemplate(t, msg)
	for _, line := range strings.Split(msg.Text, "\n") {
		if n := utf8.RuneCountInString(line); n > 72 && !strings.Contains(line, "https://") {
			t.Errorf("text line is %d characters, want ≤ 72: %q", n, line)
		}
	}
}

// checkTemplate checks what every rendered digest must satisfy: the only
// sender variables are unsubscribe_url and manage_url, once each in the
// HTML (as the whole href of the footer links) and once each in the text,
// and the HTML parses.
func checkTemplate(t *testing.T, msg digest.Rendered) {
	t.Helper()
	for part, body := range map[string]string{"subject": msg.Subject, "html": msg.HTML, "text": msg.Text} {
		var got []string
		for _, m := range variable.FindAllStringSubmatch(body, -1) {
			if m[1] != "" {
				got = append(got, m[1])
			}
		}
		var want []string
		if part != "subject" {
			want = []string{"unsubscribe_url", "manage_url"}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s variables (-want +got):\n%s", part, diff)
		}
	}
	for _, link := range []string{`href="{{unsubscribe_url}}"`, `href="{{manage_url}}"`} {
		if got := strings.Count(msg.HTML, link); got != 1 {
			t.Errorf(`HTML has %s %d times, want 1`, link, got)
		}
	}
	if strings.Contains(msg.HTML, "unsubscribe.paperroute.invalid") {
		t.Error("HTML still holds the unsubscribe sentinel")
	}
	if strings.ContainsAny(msg.Subject, "\r\n") || len(msg.Subject) > 998 {
		t.Errorf("Subject %q is not a valid header value", msg.Subject)
	}
	if len(msg.HTML) > render.MaxHTMLBytes {
		t.Errorf("HTML is %d bytes, over %d", len(msg.HTML), render.MaxHTMLBytes)
	}
	doc, err := html.Parse(strings.NewReader(msg.HTML))
	if err != nil {
		t.Fatalf("HTML does not parse: %v", err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style" || n.Data == "img") {
			t.Errorf("HTML has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("HTML has an event handler attribute %s", a.Key)
			}
			if a.Key == "href" && a.Val != "{{unsubscribe_url}}" && a.Val != "{{manage_url}}" && !strings.HasPrefix(a.Val, "https://") {
				t.Errorf("HTML has a link to %q", a.Val)
			}
		}
	}
}

func TestRenderHostilePapers(t *testing.T) {
	hostile := paper.Paper{
		ID:         "2606.00001",
		Title:      `<script>alert("x")</script> "quoted" 'single' & {{unsubscribe_url}} {{x}} {{{y}}} }}{{`,
		Authors:    []string{`<img src=x onerror=alert(1)>`, `{{unsubscribe_url}}`, `Ann "Q" O'Neil`},
		Summary:    `</p><a href="javascript:alert(1)">click</a> {{ unsubscribe_url }}{{unsubscribe_url}}`,
		Upvotes:    7,
		GitHubRepo: `https://github.com/a/b?x="><script>{{unsubscribe_url}}`,
	}
	withAI := paper.Paper{ID: "2606.00002", Title: "{{unsubscribe_url}}", AISummary: "<b>{{unsubscribe_url}}</b>"}
	r := newRenderer(t)
	msg, err := r.Render(edition(hostile, withAI))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	checkTemplate(t, msg)
	for _, bad := range []string{"<script", "<img", `href="javascript`, "<b>", "</p><a"} {
		if strings.Contains(msg.HTML, bad) {
			t.Errorf("HTML contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#34;quoted&#34; &#39;single&#39; &amp; &#123;&#123;unsubscribe_url&#125;&#125;",
		"&lt;img src=x onerror=alert(1)&gt;",
	} {
		if !strings.Contains(msg.HTML, want) {
			t.Errorf("HTML lacks the escaped %q", want)
		}
	}
	// The sender's escape: a backslash before every "{{", which the
	// sender drops, showing the title exactly as written.
	if want := `\{{unsubscribe_url}} \{{x}} \{{{y}}} }}\{{`; !strings.Contains(strings.Join(strings.Fields(msg.Text), " "), want) {
		t.Errorf("Text lacks the escaped title %q:\n%s", want, msg.Text)
	}
	if want := `Trending papers · Fri 12 Jun · <script>alert("x")</script> "quoted" 'single' &…`; msg.Subject != want {
		t.Errorf("Subject = %q, want %q", msg.Subject, want)
	}
}

// The unsubscribe sentinel is an ordinary https URL, which a paper's
// githubRepo (author-supplied, kept by the import) can be too: it must not
// turn the paper's "code" link into the reader's unsubscribe link.
func TestRenderPaperLinkCannotBecomeTheUnsubscribeLink(t *testing.T) {
	doc := `[{"paper":{"id":"2606.00003","title":"Spoof","upvotes":1,
		"githubRepo":"https://unsubscribe.paperroute.invalid/"}}]`
	papers, err := hfdaily.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := newRenderer(t).Render(edition(papers...))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	checkTemplate(t, msg)
}

// worstCase returns n papers with every field at its limit and made of
// the characters that grow most when escaped.
func worstCase(n int) []paper.Paper {
	long := func(n int) string { return strings.Repeat("{<\"&", n/4) }
	var authors []string
	for range paper.MaxAuthors {
		authors = append(authors, long(paper.MaxAuthorRunes))
	}
	var papers []paper.Paper
	for i := range n {
		papers = append(papers, paper.Paper{
			ID:          fmt.Sprintf("2606.%05d", i),
			Title:       long(paper.MaxTitleRunes),
			Summary:     long(paper.MaxSummaryRunes),
			AISummary:   long(paper.MaxAISummaryRunes),
			Authors:     authors,
			Upvotes:     paper.MaxCount,
			Comments:    paper.MaxCount,
			GitHubStars: paper.MaxCount,
			GitHubRepo:  "https://github.com/" + strings.Repeat("%7B", (paper.MaxURLBytes-19)/3),
		})
	}
	return papers
}

func TestRenderSizeBound(t *testing.T) {
	msg, err := newRenderer(t).Render(edition(worstCase(10)...))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	checkTemplate(t, msg)
	if msg.Cards != 10 {
		t.Errorf("rendered %d of 10 worst-case papers, want all (they fit)", msg.Cards)
	}
	t.Logf("worst-case HTML for 10 papers: %d bytes, text: %d bytes", len(msg.HTML), len(msg.Text))
}

func TestRenderDropsPapersBeyondTheBudget(t *testing.T) {
	msg, err := newRenderer(t).Render(edition(worstCase(50)...))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	checkTemplate(t, msg)
	if msg.Cards < 10 || msg.Cards >= 50 {
		t.Errorf("rendered %d of 50 worst-case papers, want as many as fit (at least 10)", msg.Cards)
	}
	if got := strings.Count(msg.HTML, `href="https://arxiv.org/abs/`); got != msg.Cards {
		t.Errorf("HTML shows %d papers, Message.Papers says %d", got, msg.Cards)
	}
	if !strings.Contains(msg.HTML, ">Unsubscribe</a>") {
		t.Error("the footer was dropped instead of papers")
	}
}

func TestRenderNoPapers(t *testing.T) {
	if _, err := newRenderer(t).Render(edition()); err != render.ErrNoPapers {
		t.Errorf("Render(no papers) = %v, want ErrNoPapers", err)
	}
}

func TestNewNeedsPostalAddress(t *testing.T) {
	if _, err := render.New(" \n"); err == nil {
		t.Error("New(blank address) succeeded, want an error")
	}
}

func TestCutAndAuthors(t *testing.T) {
	tests := []struct {
		name    string
		papers  []paper.Paper
		subject string
		inText  string
	}{{
		name:    "short title is whole",
		papers:  []paper.Paper{{ID: "2606.00001", Title: "MiniMax Sparse Attention", Upvotes: 1}},
		subject: "Trending papers · Fri 12 Jun · MiniMax Sparse Attention",
		inText:  "   ▲ 1\n",
	}, {
		name:    "long word is cut inside",
		papers:  []paper.Paper{{ID: "2606.00001", Title: strings.Repeat("x", 70), Authors: []string{"A", "B"}, Comments: 1}},
		subject: "Trending papers · Fri 12 Jun · " + strings.Repeat("x", 59) + "…",
		inText:  "   A, B\n   ▲ 0 · 1 comment\n",
	}, {
		name:    "summary cut at a word boundary",
		papers:  []paper.Paper{{ID: "2606.00001", Title: "T", Summary: strings.Repeat("word ", 100)}},
		subject: "Trending papers · Fri 12 Jun · T",
		inText:  " word word…\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := newRenderer(t).Render(edition(tt.papers...))
			if err != nil {
				t.Fatal(err)
			}
			if msg.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", msg.Subject, tt.subject)
			}
			if !strings.Contains(msg.Text, tt.inText) {
				t.Errorf("Text lacks %q:\n%s", tt.inText, msg.Text)
			}
		})
	}
}
