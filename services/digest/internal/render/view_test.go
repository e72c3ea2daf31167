package render_test

import (
	"strings"
	"testing"

	"github.com/paperroute/paperroute/services/digest/internal/render"
)

// TestRenderViewInBrowser checks the "View in your browser" link to the
// public edition: the daily edition's date, the weekly edition's ISO week,
// in both parts, and nothing without WithArchiveURL.
func TestRenderViewInBrowser(t *testing.T) {
	r, err := render.New(postal, render.WithArchiveURL("https://papers.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		weekly bool
		want   string
	}{
		{"daily", false, "https://papers.example.com/editions/2026-06-12"},
		{"weekly", true, "https://papers.example.com/editions/2026-W24"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ed := edition(topTen(t)...)
			ed.Weekly = c.weekly
			msg, err := r.Render(ed)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(msg.HTML, `<a href="`+c.want+`"`) || !strings.Contains(msg.HTML, "View in your browser") {
				t.Errorf("HTML has no view-in-browser link to %s", c.want)
			}
			if !strings.Contains(msg.Text, "View in your browser: "+c.want+"\n") {
				t.Errorf("text has no view-in-browser line for %s", c.want)
			}
		})
	}
	msg, err := newRenderer(t).Render(edition(topTen(t)...))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.HTML, "/editions/") || strings.Contains(msg.Text, "View in your browser") {
		t.Error("a renderer without an archive URL links to an edition")
	}
}
