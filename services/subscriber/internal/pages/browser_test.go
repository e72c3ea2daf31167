package pages_test

import (
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
// confirm button, a preferences change, and the unsubscribe button. Every
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

	b.Navigate(h.manageLink(t, sub))
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
