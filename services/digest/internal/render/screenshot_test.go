package render_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/paperroute/paperroute/platform/browsertest"

	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

// TestDigestInChromium opens a personalised digest in a real headless
// Chromium at desktop and phone widths: the mail is one column of at most
// 600 px, nothing scrolls sideways on a phone, and the footer links are
// there. UPDATE_SCREENSHOTS=1 writes the screenshots to docs/screenshots.
func TestDigestInChromium(t *testing.T) {
	ed := edition(topTen(t)[:6]...)
	for i := range 3 {
		ed.Cards[i].ForYou = true
		ed.Cards[i].Why = ranking.Why(ed.Cards[i].Paper, []string{"Large language models", "agents"})
	}
	msg, err := newRenderer(t).Render(ed)
	if err != nil {
		t.Fatal(err)
	}
	page := strings.NewReplacer("{{unsubscribe_url}}", "https://news.paperroute.example/unsubscribe?token=t",
		"{{manage_url}}", "https://news.paperroute.example/preferences?token=t").Replace(msg.HTML)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()

	b := browsertest.New(t, browsertest.WithoutJavaScript())
	b.Navigate(srv.URL)
	b.WaitVisible("h1")
	if got := b.Text("h1"); got != "Today's trending papers" {
		t.Errorf("heading = %q", got)
	}
	for _, want := range []string{"Unsubscribe", "Manage preferences"} {
		if !strings.Contains(b.Text("body"), want) {
			t.Errorf("the page lacks the %q link", want)
		}
	}
	shots := b.Screenshot(browsertest.ScreenshotDir(t, "../../../../docs/screenshots"), "digest")
	if len(shots) != 2 {
		t.Errorf("screenshots = %v, want desktop and phone", shots)
	}
	// After Screenshot the tab is at the phone width: nothing may be wider
	// than the screen, and the column is at most 600 px wide at any width.
	ctx, cancel := context.WithTimeout(b.Context(), browsertest.DefaultTimeout)
	defer cancel()
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`[document.documentElement.scrollWidth, window.innerWidth,
		document.querySelector('table[width="600"]').getBoundingClientRect().width]`))
	if err != nil {
		t.Fatalf("measure the page: %v", err)
	}
	if len(widths) != 3 || widths[0] > widths[1] || widths[2] > 600 {
		t.Errorf("page scroll width, viewport width, column width = %v; want no sideways scroll and a column ≤ 600 px", widths)
	}
}
