package site_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/archive"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/site"
)

// hostile is a paper whose every text field tries to break out of the
// page, the feed or the script.
var hostile = paper.Paper{
	ID:          "2606.99999",
	Title:       `</a><script>alert("title")</script> & <b>bold</b> ]]> {{unsubscribe_url}}`,
	Summary:     `<img src=x onerror=alert(1)> "quoted" 'single' </textarea>`,
	Authors:     []string{`<svg onload=alert(2)>`, "Ada Lovelace"},
	Upvotes:     7,
	GitHubRepo:  `javascript:alert(3)`,
	ProjectPage: `https://example.org/" onmouseover="alert(4)`,
}

// catalogue is the digest's trending ranking reduced to what the pages
// read, over one fixed list of papers.
type catalogue struct{ picks []ranking.Pick }

func (c catalogue) Trending(_ context.Context, _ time.Duration, limit int, topics []string) ([]ranking.Pick, []float64, error) {
	if len(topics) > 0 {
		return nil, nil, nil
	}
	return c.picks[:min(limit, len(c.picks))], nil, nil
}

func (catalogue) Topics() []ranking.Topic {
	return []ranking.Topic{{ID: "llm", Label: "Large language models"}}
}

func serve(t *testing.T) (*httptest.Server, archive.Store) {
	t.Helper()
	store := redisstore.NewEditionStore(redistest.Start(t, redistest.WithoutAppendOnly()).Client())
	tr := catalogue{picks: []ranking.Pick{{Paper: hostile, Why: ranking.Why(hostile, []string{`<i>x</i>`})}}}
	now := time.Date(2026, 6, 12, 12, 0, 0, 0, time.UTC)
	h, err := site.New(site.Config{
		Trending: tr, Archive: store, PublicURL: "https://papers.example.com",
		SubscriberURL: "https://news.example.com", Logger: logging.Discard(), Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &archive.Recorder{Trending: tr, Store: store, Now: func() time.Time { return now }}
	if err := rec.Record(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, store
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestHostilePaperText renders a paper made of markup on every page and in
// the feed: it shows as text, and a javascript: link is not a link.
func TestHostilePaperText(t *testing.T) {
	srv, _ := serve(t)
	for _, path := range []string{"/", "/editions/2026-06-12", "/editions/2026-W24"} {
		resp, body := fetch(t, srv.URL+path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", `href="javascript:`, `" onmouseover="`, "<b>bold", "<i>x</i>"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s carries %q unescaped", path, bad)
			}
		}
		if !strings.Contains(body, "&lt;/a&gt;&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;") {
			t.Errorf("GET %s does not show the title as text", path)
		}
	}
	resp, body := fetch(t, srv.URL+"/feed.atom")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /feed.atom = %d", resp.StatusCode)
	}
	var feed struct {
		Entries []struct {
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(body), &feed); err != nil {
		t.Fatalf("the feed is not well-formed XML: %v", err)
	}
	if len(feed.Entries) != 2 {
		t.Fatalf("feed has %d entries, want 2", len(feed.Entries))
	}
	for _, e := range feed.Entries {
		// The content is HTML carried as text: once unescaped by the feed
		// reader it must still hold no markup of the paper's.
		if strings.Contains(e.Content, "<script>") || strings.Contains(e.Content, "<img") || !strings.Contains(e.Content, "&lt;script&gt;") {
			t.Errorf("feed entry content carries the paper's markup: %.200s", e.Content)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, c := range []struct{ public, subscriber string }{
		{"", "https://news.example.com"},
		{"https://papers.example.com", "javascript:alert(1)"},
		{"ftp://papers.example.com", "https://news.example.com"},
		{"https://papers.example.com/?q=1", "https://news.example.com"},
		{"https://papers.example.com", "https://user:pw@news.example.com"},
	} {
		_, err := site.New(site.Config{
			Trending: catalogue{}, Archive: redisstore.NewEditionStore(nil), PublicURL: c.public,
			SubscriberURL: c.subscriber, Logger: logging.Discard(),
		})
		if err == nil {
			t.Errorf("New(public %q, subscriber %q) = nil error", c.public, c.subscriber)
		}
	}
}
