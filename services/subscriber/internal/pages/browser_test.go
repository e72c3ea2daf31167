package pages_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/browsertest"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// screenshotDir is where the walk's screenshots go: docs/screenshots with
// UPDATE_SCREENSHOTS=1, a temporary directory otherwise.
const screenshotDir = "../../../../docs/screenshots"

// TestBrowserWalk walks the whole life of a subscription in a real headless
// Chromium, as a reader would: the sign-up form (its script preselecting the
// browser's time zone), the confirmation mail the sender received, the
// confirm button, the "already subscribed" mail's link to the preferences
// page, a preferences change, and the unsubscribe button. Every
// page is screenshotted at desktop and phone widths.
func TestBrowserWalk(t *testing.T) {
	browsertest.Require(t)
	h := start(t)
	shots := browsertest.ScreenshotDir(t, screenshotDir)
	b := browsertest.New(t, browsertest.WithTimezone("America/New_York"))
	ids := h.topicIDs(t)

	b.Navigate(h.PublicURL + "/subscribe")
	b.WaitVisible("#subscribe")
	if got := b.Value("#timezone"); got != "America/New_York" {
		t.Errorf("time zone preselected = %q, want the browser's America/New_York", got)
	}
	b.Fill("#email", "ada@example.com")
	b.Click(`input[name="topics"][value="` + ids[0] + `"]`)
	b.Click(`input[name="frequency"][value="weekly"]`)
	b.SetValue(`select[name="weekday"]`, "friday")
	b.SetValue("#hour", "6")
	b.Screenshot(shots, "subscribe")
	b.Click("#subscribe")
	b.WaitVisible("#message")
	if got := b.Text("h1"); got != "Check your inbox" {
		t.Fatalf("after subscribing the page says %q", got)
	}
	b.Screenshot(shots, "subscribe-sent")

	h.waitMails(t, "ada@example.com", 1)
	confirmLink, _ := testenv.Link(t, h.PublicURL, h.MailsTo("ada@example.com")[0], "confirm")
	b.Navigate(confirmLink)
	b.WaitVisible("button")
	b.Screenshot(shots, "confirm")
	b.Click("button")
	b.WaitVisible("#message")
	if got := b.Text("h1"); got != "You're subscribed" {
		t.Fatalf("after confirming the page says %q", got)
	}
	b.Screenshot(shots, "confirmed")
	sub := h.state(t, "ada@example.com")
	want := subscription.Preferences{Topics: ids[:1], Keywords: []string{}, Frequency: subscription.FrequencyWeekly,
		WeeklyDay: time.Friday, DeliveryHour: 6, Timezone: "America/New_York", Locale: "en"}
	if sub.State != subscription.StateActive {
		t.Errorf("after confirming: state %v, want active", sub.State)
	}
	if diff := cmp.Diff(want, sub.Preferences); diff != "" {
		t.Errorf("preferences after signing up (-want +got):\n%s", diff)
	}

	// Signing up again is how a reader who lost their mails finds the
	// preferences page: the "already subscribed" mail links to it.
	b.Navigate(h.PublicURL + "/subscribe")
	b.Fill("#email", "ada@example.com")
	b.Click("#subscribe")
	b.WaitVisible("#message")
	h.waitMails(t, "ada@example.com", 2)
	manageLink, _ := testenv.Link(t, h.PublicURL, h.MailsTo("ada@example.com")[1], "preferences")
	b.Navigate(manageLink)
	b.WaitVisible("#save")
	if got := b.Value("#timezone"); got != "America/New_York" {
		t.Errorf("preferences page time zone = %q, want the stored America/New_York", got)
	}
	b.Screenshot(shots, "preferences")
	b.Click(`input[name="topics"][value="` + ids[1] + `"]`)
	b.Fill("#keywords", "diffusion, robot learning")
	b.Click(`input[name="frequency"][value="daily"]`)
	b.SetValue("#hour", "18")
	b.SetValue("#timezone", "Asia/Kolkata")
	b.Click("#save")
	b.WaitVisible("#notice")
	b.Screenshot(shots, "preferences-saved")
	sub = h.state(t, "ada@example.com")
	want = subscription.Preferences{Topics: ids[:2], Keywords: []string{"diffusion", "robot learning"}, Frequency: subscription.FrequencyDaily,
		WeeklyDay: time.Sunday, DeliveryHour: 18, Timezone: "Asia/Kolkata", Locale: "en"}
	if diff := cmp.Diff(want, sub.Preferences); diff != "" {
		t.Errorf("preferences after saving (-want +got):\n%s", diff)
	}

	b.Click("#unsubscribe")
	b.WaitVisible("#message")
	if got := b.Text("h1"); got != "You're unsubscribed" {
		t.Fatalf("after unsubscribing the page says %q", got)
	}
	b.Screenshot(shots, "unsubscribed")
	sub = h.state(t, "ada@example.com")
	if sub.State != subscription.StateUnsubscribed || sub.Consent.UnsubscribeChannel != subscription.ChannelPreferences {
		t.Errorf("after unsubscribing: %v by %q", sub.State, sub.Consent.UnsubscribeChannel)
	}
}

// TestBrowserWithoutJavaScript signs up with scripts off: the form works,
// and the time zone is the default instead of the browser's.
func TestBrowserWithoutJavaScript(t *testing.T) {
	browsertest.Require(t)
	h := start(t)
	b := browsertest.New(t, browsertest.WithoutJavaScript(), browsertest.WithTimezone("America/New_York"))
	b.Navigate(h.PublicURL + "/subscribe")
	b.WaitVisible("#subscribe")
	if got := b.Value("#timezone"); got != "UTC" {
		t.Errorf("time zone without JavaScript = %q, want the default UTC", got)
	}
	b.Fill("#email", "bob@example.com")
	b.Click("#subscribe")
	b.WaitVisible("#message")
	h.waitMails(t, "bob@example.com", 1)
	if tz := h.state(t, "bob@example.com").Preferences.Timezone; tz != "UTC" {
		t.Errorf("stored time zone %q, want UTC", tz)
	}
}

// TestBrowserLegacyZoneName checks a browser that reports an older zone
// name (Chromium says Asia/Calcutta for Asia/Kolkata on some systems) still
// gets it preselected and stored.
func TestBrowserLegacyZoneName(t *testing.T) {
	browsertest.Require(t)
	h := start(t)
	b := browsertest.New(t, browsertest.WithTimezone("Asia/Calcutta"))
	b.Navigate(h.PublicURL + "/subscribe")
	b.WaitVisible("#subscribe")
	got := b.Value("#timezone")
	if got != "Asia/Calcutta" && got != "Asia/Kolkata" {
		t.Fatalf("time zone preselected = %q", got)
	}
	b.Fill("#email", "carol@example.com")
	b.Click("#subscribe")
	b.WaitVisible("#message")
	h.waitMails(t, "carol@example.com", 1)
	if tz := h.state(t, "carol@example.com").Preferences.Timezone; tz != got {
		t.Errorf("stored time zone %q, want %q", tz, got)
	}
}

// TestBrowserEmbedded puts the sign-up form in an <iframe> on another site
// (the page from localhost, the form from 127.0.0.1) and signs up inside
// it: the form needs no cookie and passes the CSRF checks from there. The
// same page framing /confirm is refused by the browser.
func TestBrowserEmbedded(t *testing.T) {
	browsertest.Require(t)
	h := start(t)
	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><h1 id="outer">A blog</h1>
<iframe src="`+h.PublicURL+`/subscribe?embed=1" title="Subscribe" style="border:0;width:100%;height:760px"></iframe>
<iframe src="`+h.PublicURL+`/confirm?token=x" title="Not framable"></iframe>`)
	}))
	t.Cleanup(outer.Close)
	b := browsertest.New(t, browsertest.AllowConsoleErrors())
	b.Navigate(strings.Replace(outer.URL, "127.0.0.1", "localhost", 1))
	b.WaitVisible("#outer")

	f := b.Frame(h.PublicURL + "/subscribe")
	f.Fill("#email", "dora@example.com")
	f.Click("#subscribe")
	f.WaitVisible("#message")
	if got := f.Text("h1"); got != "Check your inbox" {
		t.Fatalf("inside the frame, after subscribing: %q", got)
	}
	h.waitMails(t, "dora@example.com", 1)

	// Of the two frames only /confirm has frame-ancestors 'none': one
	// refusal is the browser blocking it, and not the form.
	refusals := func() (n int) {
		for _, m := range b.ConsoleErrors() {
			if strings.Contains(m, "frame-ancestors 'none'") {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); refusals() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if refusals() != 1 {
		t.Errorf("want the browser to refuse framing /confirm (and only that); console: %q", b.ConsoleErrors())
	}
}
