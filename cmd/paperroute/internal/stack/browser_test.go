package stack_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/browsertest"
)

// screenshots is where the browser tests save their pictures when
// UPDATE_SCREENSHOTS=1 (docs/screenshots, from this package's directory).
const screenshots = "../../../../docs/screenshots"

func eval[T any](t *testing.T, b *browsertest.Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), browsertest.DefaultTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// shoot saves what a reader sees at desktop and phone size with the element
// matching selector scrolled into view ("" for the top of the page), as
// dir/name-desktop.png and dir/name-phone.png. browsertest.Screenshot takes
// the whole page, which for the front page is several megabytes a picture.
func shoot(t *testing.T, b *browsertest.Browser, dir, name, selector string) {
	t.Helper()
	for _, v := range []struct {
		suffix        string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"desktop", browsertest.DesktopWidth, browsertest.DesktopHeight, nil},
		{"phone", browsertest.PhoneWidth, browsertest.PhoneHeight, []chromedp.EmulateViewportOption{chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch}},
	} {
		actions := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(v.width, v.height, v.opts...)}
		if selector != "" {
			actions = append(actions, chromedp.ScrollIntoView(chromedp.CSS(selector)))
		} else {
			actions = append(actions, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`))
				return err
			}))
		}
		b.Do("set up the "+v.suffix+" shot of "+name, actions...)
		png := evalAction(t, b, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(dir, name+"-"+v.suffix+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.Do("restore the desktop viewport", chromedp.EmulateViewport(browsertest.DesktopWidth, browsertest.DesktopHeight))
}

func evalAction[T any](t *testing.T, b *browsertest.Browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), browsertest.DefaultTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitState polls the subscriber until email is in state want.
func (w *world) waitState(ctx context.Context, t *testing.T, email string, want subscriberv1.SubscriberState) {
	t.Helper()
	for {
		r, err := w.sub.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: email})
		if err == nil && r.GetSubscriber().GetState() == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s is not %v: %v, %v", email, want, r.GetSubscriber().GetState(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestFrontPageInABrowser walks the front page in headless Chromium with
// JavaScript on: filter by a topic, a rejected address shown next to its
// field, a sign-up over Connect, the confirmation mail, the confirm page;
// then an edition page and the feed.
func TestFrontPageInABrowser(t *testing.T) {
	browsertest.Require(t)
	w := startFrontWorld(t)
	// A browser on a busy machine takes its time: more than ctxT's 30s.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shots := browsertest.ScreenshotDir(t, screenshots)
	b := browsertest.New(t, browsertest.WithTimezone("Europe/Berlin"))

	b.Navigate(w.digestURL() + "/")
	b.WaitVisible("#subscribe-form") // the module shows the Connect form
	if got := b.Value("#sub-timezone"); got != "Europe/Berlin" {
		t.Errorf("time zone preselected %q, want the browser's Europe/Berlin", got)
	}
	if n := eval[int](t, b, `document.querySelectorAll("li.paper").length`); n < 10 {
		t.Errorf("the front page lists %d papers, want the sample's trending papers", n)
	}
	shoot(t, b, shots, "front", "")

	topic, in, _ := w.splitTopic(ctx, t)
	b.Click(`.chips a[href="/?topic=` + url.QueryEscape(topic.GetId()) + `"]`)
	b.WaitVisible(`.chips a[aria-current="page"][href="/?topic=` + url.QueryEscape(topic.GetId()) + `"]`)
	if got := b.Text("#trending-h"); got != "Trending in "+topic.GetLabel() {
		t.Errorf("heading after the chip = %q", got)
	}
	if n := eval[int](t, b, `document.querySelectorAll("li.paper").length`); n != len(in) {
		t.Errorf("filtered page lists %d papers, want the %d matching %s", n, len(in), topic.GetId())
	}
	if !b.Checked(`input[name="topics"][value="` + topic.GetId() + `"]`) {
		t.Error("the chosen topic is not preselected in the Subscribe box")
	}
	shoot(t, b, shots, "front-topic", "")

	// An address the subscriber rejects: its field violation shows at the
	// field, and nothing is sent.
	b.Fill("#sub-email", "not an address")
	b.Click("#sub-submit")
	b.WaitVisible("#sub-email-error")
	if got := b.Text("#sub-email-error"); !strings.HasPrefix(got, "The email address ") {
		t.Errorf("email error = %q", got)
	}
	if got := eval[string](t, b, `document.getElementById("sub-email").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the email field is not marked invalid (aria-invalid %q)", got)
	}
	shoot(t, b, shots, "front-subscribe-invalid", "#subscribe-h")

	const reader = "js-reader@example.org"
	eval[string](t, b, `document.getElementById("sub-email").value = ""`) // chromedp.Clear leaves the typed text here
	b.Fill("#sub-email", reader)
	b.Click("#sub-submit")
	b.WaitVisible("#sub-status.ok")
	if got := b.Text("#sub-status"); !strings.Contains(strings.ToLower(got), "inbox") {
		t.Errorf("status after Subscribe = %q, want the neutral check-your-inbox answer", got)
	}
	if vis := eval[bool](t, b, `!document.getElementById("sub-email-error").hidden`); vis {
		t.Error("the earlier field error is still shown after a good submit")
	}
	shoot(t, b, shots, "front-subscribe-sent", "#sub-submit")

	token := w.mailLink(ctx, reader, "confirm")
	b.Navigate(w.subscriberURL() + "/confirm?token=" + url.QueryEscape(token))
	b.Click(`button[type="submit"]`)
	w.waitState(ctx, t, reader, subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE)
	r, err := w.sub.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: reader})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.GetSubscriber().GetConsent(); c.GetConsentTextVersion() != "front-2026-11-v1" || c.GetSignupIp() != "127.0.0.1" || !strings.Contains(c.GetSignupUserAgent(), "Chrome") {
		t.Errorf("consent evidence %v; want the front page's consent version and the browser's address and agent", c)
	}

	daily, weekly := todayIDs()
	w.waitOK(ctx, t, "/editions/"+daily)
	w.waitOK(ctx, t, "/editions/"+weekly)
	b.Navigate(w.digestURL() + "/editions/" + daily)
	b.WaitVisible("h1")
	if got := b.Text("h1"); !strings.HasPrefix(got, "Trending papers of ") {
		t.Errorf("edition heading = %q", got)
	}
	shoot(t, b, shots, "front-edition", "")
	b.Navigate(w.digestURL() + "/editions")
	b.WaitVisible(`a[href="/editions/` + weekly + `"]`)
	b.Navigate(w.digestURL() + "/feed.atom")
	// Chromium shows a feed in its XML viewer, the tags as text.
	feed := eval[string](t, b, `document.documentElement.innerText`)
	if !strings.Contains(feed, `<feed xmlns="http://www.w3.org/2005/Atom">`) || !strings.Contains(feed, "/editions/"+daily+"</id>") {
		t.Errorf("the browser shows the feed as %.300q…; want the Atom feed with today's edition", feed)
	}
}

// TestFrontPageWithoutJavaScript checks the front page with scripts off:
// the papers and chips work as plain links, the Connect form stays hidden,
// and the Subscribe box is the subscriber's own form (in a frame, and a link
// to it). When the subscriber serves its sign-up page, the test signs up
// through it inside the frame and confirms.
func TestFrontPageWithoutJavaScript(t *testing.T) {
	browsertest.Require(t)
	w := startFrontWorld(t)
	// A browser on a busy machine takes its time: more than ctxT's 30s.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shots := browsertest.ScreenshotDir(t, screenshots)
	resp, err := w.http.Get(w.subscriberURL() + "/subscribe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hasForm := resp.StatusCode != http.StatusNotFound
	opts := []browsertest.Option{browsertest.WithoutJavaScript()}
	if !hasForm {
		// The frame then holds the subscriber's 404 page, which refuses
		// to be framed, and the browser logs that.
		opts = append(opts, browsertest.AllowConsoleErrors())
	}
	b := browsertest.New(t, opts...)

	b.Navigate(w.digestURL() + "/")
	b.WaitVisible("li.paper")
	if eval[bool](t, b, `!document.getElementById("subscribe-form").hidden`) {
		t.Error("the Connect form shows without JavaScript")
	}
	b.WaitVisible("iframe.subscribe-frame")
	if got := eval[string](t, b, `document.getElementById("sub-fallback-link").href`); got != w.subscriberURL()+"/subscribe" {
		t.Errorf("fallback link = %q, want %s/subscribe", got, w.subscriberURL())
	}
	topic, in, _ := w.splitTopic(ctx, t)
	b.Click(`.chips a[href="/?topic=` + url.QueryEscape(topic.GetId()) + `"]`)
	b.WaitVisible(`.chips a[aria-current="page"][href="/?topic=` + url.QueryEscape(topic.GetId()) + `"]`)
	if n := eval[int](t, b, `document.querySelectorAll("li.paper").length`); n != len(in) {
		t.Errorf("filtered page lists %d papers without JavaScript, want %d", n, len(in))
	}

	if !hasForm {
		t.Skip("the subscriber serves no /subscribe page in this build: the fallback's sign-up is not walked")
	}
	shoot(t, b, shots, "front-nojs", "#subscribe-h")
	const reader = "nojs-reader@example.org"
	b.Navigate(w.digestURL() + "/")
	b.Click("#sub-fallback-link")
	b.WaitVisible(`input[name="email"]`)
	if got := b.Location(); got != w.subscriberURL()+"/subscribe" {
		t.Errorf("the fallback link led to %s, want the subscriber's /subscribe", got)
	}
	b.Fill(`input[name="email"]`, reader)
	b.Click(`form button[type="submit"]`)
	token := w.mailLink(ctx, reader, "confirm")
	b.Navigate(w.subscriberURL() + "/confirm?token=" + url.QueryEscape(token))
	b.Click(`button[type="submit"]`)
	w.waitState(ctx, t, reader, subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE)
}

// TestSubscribeBoxShowsTheRateLimit spends the per-address sign-up limit
// and checks what the Subscribe box tells the reader: when to try again,
// from the RetryInfo detail, with what they typed kept.
func TestSubscribeBoxShowsTheRateLimit(t *testing.T) {
	browsertest.Require(t)
	w := startFrontWorldWith(t, map[string]string{"SUBSCRIBER_LIMIT_PER_IP": "1/1h"})
	b := browsertest.New(t)
	b.Navigate(w.digestURL() + "/")
	b.WaitVisible("#subscribe-form")
	b.Fill("#sub-email", "first@example.org")
	b.Click("#sub-submit")
	b.WaitVisible("#sub-status.ok")
	b.Fill("#sub-email", "second@example.org")
	b.Click("#sub-submit")
	b.WaitVisible("#sub-problem")
	got := b.Text("#sub-problem")
	if !strings.HasPrefix(got, "Too many sign-ups just now. Please try again in ") || !strings.HasSuffix(got, " minutes.") {
		t.Errorf("rate-limit message = %q, want when to try again in minutes", got)
	}
	if v := b.Value("#sub-email"); v != "second@example.org" {
		t.Errorf("the typed address is gone after the refusal: %q", v)
	}
}
