package digestd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

func TestRunDigest(t *testing.T) {
	s := start(t, nil)
	s.importFixture(t)
	due := s.addDue(t, 3)

	run := s.runDigest(t, "2026-06-12", false)
	if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3, Queued: 3}, countsOf(run)); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	// The ten best by the trending score (docs/ranking.md) of the papers
	// featured in the 72 hours before the edition's end.
	wantPapers := []string{"2606.13681", "2606.13392", "2606.08063", "2606.13289", "2606.06113",
		"2606.13106", "2606.12243", "2606.11409", "2606.11662", "2606.12303"}
	if diff := cmp.Diff(wantPapers, run.GetPaperIds()); diff != "" {
		t.Errorf("edition papers (-want +got):\n%s", diff)
	}
	if run.GetEdition() != "2026-06-12" || run.GetDryRun() || run.GetFinishTime() == nil || run.GetError() != "" {
		t.Errorf("run = %v, want edition 2026-06-12, finished, no error", run)
	}

	puts := s.sender.Puts()
	if len(puts) != 1 {
		t.Fatalf("sender got %d PutContent calls, want 1", len(puts))
	}
	content := puts[0]
	if got, want := content.GetSubject(), "Trending papers · Fri 12 Jun · EvoArena: Tracking Memory Evolution for Robust LLM Agents…"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	html := content.GetHtmlBody()
	for _, want := range []string{"EvoArena: Tracking Memory Evolution for Robust LLM Agents in Dynamic Environments", `href="{{unsubscribe_url}}"`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if len(html) >= 100*1024 {
		t.Errorf("HTML is %d bytes, want under 100 KB", len(html))
	}
	if text := content.GetTextBody(); !strings.Contains(text, "EvoArena") || !strings.Contains(text, "{{unsubscribe_url}}") {
		t.Errorf("text part lacks the top paper or the unsubscribe variable:\n%s", text)
	}

	queued := s.sender.Queued()
	var want []*senderv1.OutboundMessage
	for _, d := range due {
		want = append(want, &senderv1.OutboundMessage{
			IdempotencyKey:     "digest:" + d.GetSubscriberId() + ":2026-06-12",
			Recipient:          d.GetEmail(),
			Lane:               senderv1.Lane_LANE_BULK,
			ContentId:          queued[0].GetContentId(),
			Variables:          map[string]string{"unsubscribe_url": d.GetUnsubscribeUrl(), "manage_url": d.GetManageUrl()},
			ListUnsubscribeUrl: d.GetUnsubscribeUrl(),
		})
	}
	if diff := cmp.Diff(want, queued, protocmp.Transform()); diff != "" {
		t.Errorf("queued messages (-want +got):\n%s", diff)
	}
	if queued[0].GetContentId() == "" {
		t.Error("messages carry no content id")
	}

	t.Run("same edition again sends nothing new", func(t *testing.T) {
		run := s.runDigest(t, "2026-06-12", false)
		if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3, Duplicate: 3}, countsOf(run)); diff != "" {
			t.Errorf("second run (-want +got):\n%s", diff)
		}
		if n := len(s.sender.Queued()); n != 3 {
			t.Errorf("sender queued %d messages in total, want still 3", n)
		}
	})
	t.Run("another edition is new mail", func(t *testing.T) {
		run := s.runDigest(t, "2026-06-13", false)
		if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3, Queued: 3}, countsOf(run)); diff != "" {
			t.Errorf("next edition (-want +got):\n%s", diff)
		}
		if n := len(s.sender.Queued()); n != 6 {
			t.Errorf("sender queued %d messages in total, want 6", n)
		}
	})
	t.Run("dry run counts and sends nothing", func(t *testing.T) {
		puts, batches := len(s.sender.Puts()), s.sender.Calls()
		run := s.runDigest(t, "2026-06-14", true)
		if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3}, countsOf(run)); diff != "" {
			t.Errorf("dry run (-want +got):\n%s", diff)
		}
		if !run.GetDryRun() || len(run.GetPaperIds()) != 10 {
			t.Errorf("dry run = %v, want dry_run and the 10 papers it would send", run)
		}
		if len(s.sender.Puts()) != puts || s.sender.Calls() != batches {
			t.Errorf("dry run called the sender: %d PutContent and %d Enqueue calls before, %d and %d after",
				puts, batches, len(s.sender.Puts()), s.sender.Calls())
		}
	})
}

func TestRunDigestPagesThroughSubscribers(t *testing.T) {
	s := start(t, map[string]string{"DIGEST_PAPERS_PER_EDITION": "3"})
	s.importFixture(t)
	s.addDue(t, 1201)
	run := s.runDigest(t, "2026-06-12", false)
	if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 1201, Queued: 1201}, countsOf(run)); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	// Three pages of up to 500 due subscribers, one Enqueue batch each.
	if got := s.sender.Calls(); got != 3 {
		t.Errorf("Enqueue called %d times, want one batch per page", got)
	}
	if got := len(run.GetPaperIds()); got != 3 {
		t.Errorf("edition has %d papers, want DIGEST_PAPERS_PER_EDITION=3", got)
	}
}

func TestRunDigestWithoutPapersSkipsEveryone(t *testing.T) {
	s := start(t, nil)
	s.addDue(t, 3)
	run := s.runDigest(t, "2026-06-12", false)
	if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3, Skipped: 3}, countsOf(run)); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	if len(s.sender.Puts()) != 0 || s.sender.Calls() != 0 {
		t.Error("a run without papers called the sender")
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l := listen(t)
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRunDigestFailures(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		breakIt   func(s *service)
		want      counts
		wantError string
		queued    int
	}{{
		// Enqueue failures do not stop a run: the failed subscribers are
		// counted and the run goes on to the next page, ending SUCCEEDED
		// with failed_count and the first error.
		name:      "sender enqueue fails",
		breakIt:   func(s *service) { s.sender.FailEnqueue(status.Error(codes.Internal, "disk full")) },
		want:      counts{State: "SUCCEEDED", Due: 3, Failed: 3},
		wantError: "could not queue digests",
	}, {
		// Content is rendered per page (readers' topics decide the
		// papers), after the page's subscribers were counted due.
		name:      "sender put content fails",
		breakIt:   func(s *service) { s.sender.FailPutContent(status.Error(codes.Internal, "disk full")) },
		want:      counts{State: "FAILED", Due: 3},
		wantError: "could not store the edition's content in the sender",
	}, {
		name:      "subscriber service fails",
		env:       map[string]string{"SUBSCRIBER_GRPC_ADDR": closedAddr(t)},
		breakIt:   func(*service) {},
		want:      counts{State: "FAILED"},
		wantError: "could not list the due subscribers",
	}, {
		name: "one invalid recipient does not hold back the page",
		breakIt: func(s *service) {
			s.sender.Reject(func(m *senderv1.OutboundMessage) bool { return m.GetRecipient() == "reader1@example.com" })
		},
		want:      counts{State: "SUCCEEDED", Due: 3, Queued: 2, Failed: 1},
		wantError: "could not queue digests",
		queued:    2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.env)
			s.importFixture(t)
			s.addDue(t, 3)
			tt.breakIt(s)
			run := s.runDigest(t, "2026-06-12", false)
			if diff := cmp.Diff(tt.want, countsOf(run)); diff != "" {
				t.Errorf("run (-want +got):\n%s", diff)
			}
			if !strings.Contains(run.GetError(), tt.wantError) {
				t.Errorf("run error = %q, want it to contain %q", run.GetError(), tt.wantError)
			}
			if strings.Contains(run.GetError(), "boom") && tt.want.State == "FAILED" {
				t.Errorf("run error %q leaks the peer's error text", run.GetError())
			}
			if n := len(s.sender.Queued()); n != tt.queued {
				t.Errorf("sender queued %d messages, want %d", n, tt.queued)
			}
			if run.GetFinishTime() == nil {
				t.Error("failed run has no finish time")
			}
		})
	}
}

func TestRunDigestRejects(t *testing.T) {
	ctx := context.Background()
	s := start(t, nil)
	for _, edition := range []string{"2026-13-01", "yesterday", "2026-6-1", "2026-02-30", "2026-06-12T00:00:00Z", " 2026-06-12", "1999-12-31", strings.Repeat("9", 10000)} {
		t.Run(edition[:min(len(edition), 30)], func(t *testing.T) {
			_, err := s.client.RunDigest(ctx, &digestv1.RunDigestRequest{Edition: edition})
			wantCode(t, err, codes.InvalidArgument, "edition")
		})
	}
	if keys := s.digKeys(t); len(keys) != 0 {
		t.Errorf("refused runs stored keys %v", keys)
	}

	for _, id := range []string{"", "nope", "01J0000000000000000000000", "01J0000000000000000000000!", "../../dig:run:x", "81J00000000000000000000000"} {
		t.Run("run id "+id, func(t *testing.T) {
			_, err := s.client.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{RunId: id})
			wantCode(t, err, codes.InvalidArgument, "run_id")
		})
	}
	t.Run("unknown run", func(t *testing.T) {
		_, err := s.client.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{RunId: "01J00000000000000000000000"})
		wantCode(t, err, codes.NotFound, "")
	})
}

func TestRunDigestEmptyEditionIsToday(t *testing.T) {
	s := start(t, nil)
	before := time.Now().UTC().Format(time.DateOnly)
	resp, err := s.client.RunDigest(context.Background(), &digestv1.RunDigestRequest{})
	after := time.Now().UTC().Format(time.DateOnly)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetRun().GetEdition(); got != before && got != after {
		t.Errorf("edition = %q, want today (UTC) %q", got, after)
	}
	s.waitRun(t, resp.GetRun().GetId())
}

func TestShutdownInterruptsRuns(t *testing.T) {
	s := start(t, nil)
	s.importFixture(t)
	s.addDue(t, 3)
	blocked := s.sender.BlockEnqueue()
	resp, err := s.client.RunDigest(context.Background(), &digestv1.RunDigestRequest{Edition: "2026-06-12"})
	if err != nil {
		t.Fatal(err)
	}
	<-blocked // the run is inside Enqueue
	if err := s.stop(); err != nil {
		t.Fatalf("digestd.Run = %v, want nil", err)
	}
	run, err := redisstore.New(s.rdb).GetRun(context.Background(), resp.GetRun().GetId())
	if err != nil {
		t.Fatal(err)
	}
	if run.State != digest.RunFailed || run.Error != "interrupted by shutdown; run it again" || run.FinishTime.IsZero() {
		t.Errorf("run after shutdown = %+v, want FAILED, interrupted by shutdown", run)
	}
	if run.Counts.Failed != 0 || run.Counts.Queued != 0 {
		t.Errorf("interrupted batch was counted: %+v", run.Counts)
	}
}
