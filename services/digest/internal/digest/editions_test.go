package digest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
)

func TestNeverResendAcrossEditions(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T23:00:00Z"), 12)
	h.importFixture() // 30 papers featured 12 June
	h.addSubs(sub("ada", "UTC", 23))

	first := h.run(digest.RunRequest{Edition: "2026-06-12"})
	if first.State != digest.RunSucceeded || first.Counts.Queued != 1 || len(first.PaperIDs) != 12 {
		t.Fatalf("first edition = %+v, want 12 papers queued to ada", first)
	}

	h.setNow(utc("2026-06-13T23:00:00Z"))
	second := h.run(digest.RunRequest{Edition: "2026-06-13"})
	if second.Counts.Queued != 1 || len(second.PaperIDs) != 12 {
		t.Fatalf("second edition = %+v, want 12 more papers", second)
	}
	for _, id := range second.PaperIDs {
		if slices.Contains(first.PaperIDs, id) {
			t.Errorf("paper %s was sent again in the second edition", id)
		}
	}

	t.Run("a run again of an edition picks the same papers and sends nothing", func(t *testing.T) {
		again := h.run(digest.RunRequest{Edition: "2026-06-12"})
		if diff := cmp.Diff(first.PaperIDs, again.PaperIDs); diff != "" || again.Counts.Duplicate != 1 || again.Counts.Queued != 0 {
			t.Errorf("run again = %+v (papers -first +again:\n%s), want the same papers, one duplicate", again, diff)
		}
	})

	// Six papers are left in the window: the third edition has them.
	h.setNow(utc("2026-06-14T23:00:00Z"))
	third := h.run(digest.RunRequest{Edition: "2026-06-14"})
	if third.Counts.Queued != 1 || len(third.PaperIDs) != 6 {
		t.Fatalf("third edition = %+v, want the 6 papers not sent yet", third)
	}

	t.Run("nothing new is skipped and counted, not mailed", func(t *testing.T) {
		h.setNow(utc("2026-06-14T23:30:00Z"))
		// A second subscriber arrives: they get papers; ada has nothing new.
		h.addSubs(sub("bob", "UTC", 23))
		fourth := h.run(digest.RunRequest{Edition: "2026-06-15"})
		if fourth.Counts.Due != 2 || fourth.Counts.Skipped != 1 || fourth.Counts.Queued != 1 {
			t.Errorf("fourth edition = %+v, want ada skipped (nothing new), bob queued", fourth.Counts)
		}
		if got := h.keys("ada@example.com"); !slices.Equal(got, []string{"digest:ada:2026-06-12", "digest:ada:2026-06-13", "digest:ada:2026-06-14"}) {
			t.Errorf("ada's digests = %v, want exactly the three editions", got)
		}
	})

	t.Run("the window moves on", func(t *testing.T) {
		// 72 hours after the fixture's day, its papers are no longer
		// trending: a new reader is skipped too.
		h.setNow(utc("2026-06-16T12:00:00Z"))
		h.addSubs(sub("cy", "UTC", 12))
		late := h.run(digest.RunRequest{Edition: "2026-06-16"})
		if late.Counts.Skipped != 1 || late.Counts.Queued != 0 {
			t.Errorf("edition after the window = %+v, want cy skipped", late.Counts)
		}
	})
}

// Readers who asked for the same get the same digest only when they were
// sent the same papers before: a run shares picks between readers (one
// Pick per profile), never across different histories.
func TestSameProfileDifferentHistoryGetsItsOwnDigest(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T23:00:00Z"), 12)
	h.importFixture()
	h.addSubs(sub("ada", "UTC", 23))
	if first := h.run(digest.RunRequest{Edition: "2026-06-12"}); first.Counts.Queued != 1 {
		t.Fatalf("first edition = %+v, want ada queued", first.Counts)
	}

	h.setNow(utc("2026-06-13T23:00:00Z"))
	h.addSubs(sub("bob", "UTC", 23), sub("cy", "UTC", 23))
	second := h.run(digest.RunRequest{Edition: "2026-06-13"})
	if second.Counts.Queued != 3 || second.Counts.Contents != 2 {
		t.Fatalf("second edition = %+v, want 3 queued from 2 contents (ada's, and bob's = cy's)", second.Counts)
	}
	ada := h.sender.MailsTo("ada@example.com")
	bob := h.sender.MailsTo("bob@example.com")[0]
	cy := h.sender.MailsTo("cy@example.com")[0]
	if len(ada) != 2 || ada[1].ContentID == bob.ContentID {
		t.Errorf("ada (sent papers before) got bob's digest, or not two digests: %d mails", len(ada))
	}
	if bob.ContentID != cy.ContentID {
		t.Error("bob and cy (same preferences, nothing sent before) got different digests")
	}
}

func TestForYouByTopic(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T09:00:00Z"), 6)
	h.importFixture()
	h.addSubs(sub("rob", "UTC", 9, topics("robotics")), sub("tia", "UTC", 9))
	run := h.run(digest.RunRequest{Edition: "2026-06-12"})
	if run.Counts.Queued != 2 || run.Counts.Contents != 2 {
		t.Fatalf("run = %+v, want 2 digests from 2 distinct contents", run.Counts)
	}
	rob := h.sender.MailsTo("rob@example.com")[0]
	tia := h.sender.MailsTo("tia@example.com")[0]
	if rob.ContentID == tia.ContentID {
		t.Error("a reader with topics got the same content as a reader without")
	}
	for _, want := range []string{"For you", "matches: Robotics and embodied AI", "Also trending"} {
		if !strings.Contains(rob.Text, want) {
			t.Errorf("rob's digest lacks %q:\n%s", want, rob.Text)
		}
	}
	if strings.Contains(tia.Text, "For you") || strings.Contains(tia.Text, "matches:") {
		t.Errorf("a reader without topics got a For you section:\n%s", tia.Text)
	}
}

func TestRunDigestRefusesEditionsTooFarAhead(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T22:00:00Z"), 10)
	ctx := context.Background()
	for _, tt := range []struct {
		req   digest.RunRequest
		field string
	}{
		{digest.RunRequest{Edition: "2026-06-14"}, "edition"},
		{digest.RunRequest{Edition: "9999-12-31"}, "edition"},
		{digest.RunRequest{Slot: utc("2026-06-14T00:00:00Z")}, "slot"},
		{digest.RunRequest{Slot: utc("2026-06-12T10:05:00Z")}, "slot"},
		{digest.RunRequest{Edition: "2026-06-12", Slot: utc("2026-06-12T10:00:00Z")}, "slot"},
		{digest.RunRequest{Edition: "2026-02-30"}, "edition"},
	} {
		_, err := h.svc.RunDigest(ctx, tt.req)
		var verr *validation.Error
		if !errors.As(err, &verr) || verr.Violations[0].Field != tt.field {
			t.Errorf("RunDigest(%+v) = %v, want a violation on %s", tt.req, err, tt.field)
		}
	}
	for _, ok := range []digest.RunRequest{
		{Edition: "2026-06-13"}, // tomorrow (UTC) is allowed
		{Edition: "2026-06-20", DryRun: true},
		{Edition: "9999-12-31", DryRun: true},
		{Slot: utc("2026-06-13T23:45:00Z")},
	} {
		if got := h.run(ok); got.State != digest.RunSucceeded {
			t.Errorf("RunDigest(%+v) = %+v, want it to run", ok, got)
		}
	}
	if n := len(h.sender.Queued()); n != 0 {
		t.Errorf("%d digests queued; nothing should have been (no subscribers)", n)
	}
}

func TestSlotRunGivesEachSubscriberTheirLocalEdition(t *testing.T) {
	// 2026-06-14 01:30 UTC is Sunday 07:00 in Kolkata (+5:30), Sunday
	// 13:15 in Chatham (+12:45)... and 07:00 Sunday in Kolkata is the
	// slot's one local whole hour for these zones.
	h := newHarness(t, utc("2026-06-14T01:40:00Z"), 5)
	h.importFixture()
	h.addSubs(
		sub("kol", "Asia/Kolkata", 7),
		sub("kolweekly", "Asia/Kolkata", 7, weekly(7)), // Sunday: due
		sub("kolmonday", "Asia/Kolkata", 7, weekly(1)), // Monday: not due
		sub("berlin", "Europe/Berlin", 7),              // 03:30 there: not due
		sub("pago", "Pacific/Pago_Pago", 14),           // Saturday 14:30: not due
		sub("katmandu", "Asia/Kathmandu", 7),           // 07:15 there: not due
	)
	run := h.run(digest.RunRequest{Slot: utc("2026-06-14T01:30:00Z")})
	if run.State != digest.RunSucceeded || run.Counts.Due != 2 || run.Counts.Queued != 2 {
		t.Fatalf("slot run = %+v, want the two Kolkata subscribers due and queued", run)
	}
	var keys []string
	for _, m := range h.sender.Mails() {
		keys = append(keys, h.keys(m.To)...)
	}
	want := []string{"digest:kol:2026-06-14", "digest:kolweekly:2026-W24"}
	slices.Sort(keys)
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestRunWhoseProcessDiedIsMarkedFailed(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T09:00:00Z"), 10)
	ctx := context.Background()
	dead := digest.Run{ID: ulid.MustNew(ulid.Timestamp(utc("2026-06-12T08:00:00Z")), rand.Reader).String(), Edition: "2026-06-12", State: digest.RunRunning,
		CreateTime: utc("2026-06-12T08:00:00Z"), HeartbeatTime: utc("2026-06-12T08:57:00Z")}
	if err := h.store.CreateRun(ctx, dead); err != nil {
		t.Fatal(err)
	}
	got, err := h.svc.GetRun(ctx, dead.ID)
	if err != nil || got.State != digest.RunFailed || got.Error == "" {
		t.Fatalf("GetRun of a run whose heartbeat stopped 3 minutes ago = %+v, %v; want FAILED with a reason", got, err)
	}
	runs, _, err := h.svc.ListRuns(ctx, 10, "")
	if err != nil || len(runs) != 1 || runs[0].State != digest.RunFailed {
		t.Errorf("ListRuns = %+v, %v; want the run FAILED", runs, err)
	}

	alive := digest.Run{ID: ulid.MustNew(ulid.Timestamp(utc("2026-06-12T08:00:01Z")), rand.Reader).String(), Edition: "2026-06-12", State: digest.RunRunning,
		CreateTime: utc("2026-06-12T08:00:00Z"), HeartbeatTime: utc("2026-06-12T08:59:30Z")}
	if err := h.store.CreateRun(ctx, alive); err != nil {
		t.Fatal(err)
	}
	if got, err := h.svc.GetRun(ctx, alive.ID); err != nil || got.State != digest.RunRunning {
		t.Errorf("GetRun of a run with a recent heartbeat = %+v, %v; want RUNNING", got, err)
	}
}

func TestListRunsPages(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T09:00:00Z"), 10)
	var ids []string
	for i := range 5 {
		h.setNow(utc("2026-06-12T09:00:00Z").Add(time.Duration(i) * time.Second))
		ids = append(ids, h.run(digest.RunRequest{Edition: "2026-06-12", DryRun: true}).ID)
	}
	slices.Reverse(ids)
	var got []string
	token := ""
	for {
		runs, next, err := h.svc.ListRuns(context.Background(), 2, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("ListRuns pages (-want newest first +got):\n%s", diff)
	}
	if _, _, err := h.svc.ListRuns(context.Background(), 2, "not-a-token"); err == nil {
		t.Error("ListRuns with a bad token succeeded")
	}
}

func TestTemplateSyntaxInPaperTextShowsAsWritten(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T09:00:00Z"), 3)
	title := `Attacks on {{unsubscribe_url}} and \{{manage_url}} templates`
	if _, err := h.papers.Import(context.Background(), library.FormatHFDailyJSON, []byte(`[{"paper":{"id":"2606.00009",
		"title":"`+strings.ReplaceAll(title, `\`, `\\`)+`","upvotes":5,"submittedOnDailyAt":"2026-06-12T00:00:00.000Z"}}]`)); err != nil {
		t.Fatal(err)
	}
	h.addSubs(sub("ada", "UTC", 9))
	if run := h.run(digest.RunRequest{Edition: "2026-06-12"}); run.Counts.Queued != 1 {
		t.Fatalf("run = %+v", run)
	}
	// Mails are rendered by the sender's own template engine.
	m := h.sender.MailsTo("ada@example.com")[0]
	if !strings.Contains(m.Subject, title) || !strings.Contains(strings.Join(strings.Fields(m.Text), " "), title) {
		t.Errorf("subject %q / text do not show the title exactly as written:\n%s", m.Subject, m.Text)
	}
	if !strings.Contains(m.HTML, "Attacks on {{unsubscribe_url}} and \\{{manage_url}} templates") &&
		!strings.Contains(m.HTML, "Attacks on &#123;&#123;unsubscribe_url&#125;&#125; and \\&#123;&#123;manage_url&#125;&#125; templates") {
		t.Errorf("HTML does not show the title as written")
	}
	if u := m.Variables["unsubscribe_url"]; u == "" || strings.Count(m.Text, u) != 1 {
		t.Errorf("the unsubscribe link appears other than once in the text:\n%s", m.Text)
	}
}

// dueList is a digest.Subscribers that lists a fixed page: the subscriber
// service always signs links, so only a stand-in can show what a run does
// with a due subscriber that comes without one.
type dueList []digest.DueSubscriber

func (d dueList) ListDue(context.Context, time.Time, int, string) ([]digest.DueSubscriber, string, error) {
	return d, "", nil
}

func TestDueSubscriberWithoutUnsubscribeURLFails(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T09:00:00Z"), 3)
	h.importFixture()
	h.cfg.Subscribers = dueList{
		{ID: "s1", Email: "a@example.com", UnsubscribeURL: "https://x/u?t=1"},
		{ID: "s2", Email: "b@example.com"},
		{ID: "s3", Email: "c@example.com", UnsubscribeURL: "https://x/u?t=3"},
	}
	h.restart()
	run := h.run(digest.RunRequest{Edition: "2026-06-12"})
	if run.State != digest.RunSucceeded || run.Counts.Due != 3 || run.Counts.Queued != 2 || run.Counts.Failed != 1 ||
		!strings.Contains(run.Error, "without an id, address or unsubscribe URL") {
		t.Errorf("run = %+v, want b failed (no unsubscribe URL), a and c queued", run)
	}
	if n := len(h.sender.Queued()); n != 2 {
		t.Errorf("sender queued %d messages, want 2", n)
	}
}
