package digestd_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/digestd"
	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/peertest"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

const fixture = "../internal/hfdaily/testdata/hf-daily-papers-2026-06-12.json"

// service is one running digest service with its fakes.
type service struct {
	client  digestv1.DigestServiceClient // with the admin token
	addr    string
	httpURL string
	redis   *redistest.Server
	rdb     redis.UniversalClient
	subs    *peertest.Subscribers
	sender  *peertest.Sender
	stop    func() error // stops the service and returns Run's result
}

// start runs digestd.Run over loopback TCP against a private redis-server
// and fake subscriber and sender services; extra overrides the environment.
func start(t *testing.T, extra map[string]string) *service {
	t.Helper()
	s := &service{redis: redistest.Start(t, redistest.WithoutAppendOnly())}
	s.rdb = s.redis.Client()
	s.subs = peertest.StartSubscribers(t)
	s.sender = peertest.StartSender(t)

	env := map[string]string{
		"REDIS_URL":                s.redis.URL(),
		"PAPERROUTE_ADMIN_TOKEN":   peertest.Tokens.Admin,
		"PAPERROUTE_SERVICE_TOKEN": peertest.Tokens.Service,
		"SUBSCRIBER_GRPC_ADDR":     s.subs.Addr,
		"SENDER_GRPC_ADDR":         s.sender.Addr,
		"SHUTDOWN_GRACE":           "5s",
	}
	for k, v := range extra {
		env[k] = v
	}
	grpcLis := listen(t)
	httpLis := listen(t)
	s.addr = grpcLis.Addr().String()
	s.httpURL = "http://" + httpLis.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- digestd.Run(ctx, envload.MapGetenv(env, nil), digestd.Deps{
			Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis,
		})
	}()
	stopped := false
	var result error
	s.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("digestd.Run = %v after shutdown, want nil", err)
		}
	})
	s.client = digestv1.NewDigestServiceClient(dial(t, s.addr, peertest.Tokens.Admin))
	return s
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dial connects to addr presenting token ("" for none).
func dial(t *testing.T, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64 << 20))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerToken{Token: token, AllowInsecure: true}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readFixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *service) importFixture(t *testing.T) {
	t.Helper()
	resp, err := s.client.ImportPapers(context.Background(), &digestv1.ImportPapersRequest{
		Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: readFixture(t),
	})
	if err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	if n := len(resp.GetPaperIds()); n != 30 {
		t.Fatalf("ImportPapers stored %d papers, want 30", n)
	}
}

// digKeys counts the digest service's keys in Redis.
func (s *service) digKeys(t *testing.T) []string {
	t.Helper()
	keys, err := s.rdb.Keys(context.Background(), "dig:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// waitRun polls GetDigestRun until the run has finished.
func (s *service) waitRun(t *testing.T, id string) *digestv1.DigestRun {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.client.GetDigestRun(context.Background(), &digestv1.GetDigestRunRequest{RunId: id})
		if err != nil {
			t.Fatalf("GetDigestRun: %v", err)
		}
		if st := resp.GetRun().GetState(); st != digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING {
			return resp.GetRun()
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still RUNNING: %v", id, resp.GetRun())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runDigest starts a run and waits for it to finish.
func (s *service) runDigest(t *testing.T, edition string, dryRun bool) *digestv1.DigestRun {
	t.Helper()
	resp, err := s.client.RunDigest(context.Background(), &digestv1.RunDigestRequest{Edition: edition, DryRun: dryRun})
	if err != nil {
		t.Fatalf("RunDigest(%q): %v", edition, err)
	}
	run := resp.GetRun()
	if run.GetState() != digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING || run.GetId() == "" || run.GetCreateTime() == nil {
		t.Errorf("RunDigest returned %v, want a RUNNING run with an id and create time", run)
	}
	return s.waitRun(t, run.GetId())
}

func due(n int) []*subscriberv1.DueSubscriber {
	out := make([]*subscriberv1.DueSubscriber, n)
	for i := range out {
		out[i] = &subscriberv1.DueSubscriber{
			SubscriberId:   fmt.Sprintf("sub%04d", i),
			Email:          fmt.Sprintf("reader%d@example.com", i),
			UnsubscribeUrl: fmt.Sprintf("https://paperroute.example/unsubscribe?token=t%d", i),
		}
	}
	return out
}

// counts is the part of a run the tests compare.
type counts struct {
	State                                   string
	Due, Queued, Duplicate, Skipped, Failed int64
}

func countsOf(r *digestv1.DigestRun) counts {
	return counts{
		State: strings.TrimPrefix(r.GetState().String(), "DIGEST_RUN_STATE_"),
		Due:   r.GetDueCount(), Queued: r.GetQueuedCount(), Duplicate: r.GetDuplicateCount(),
		Skipped: r.GetSkippedCount(), Failed: r.GetFailedCount(),
	}
}

func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
	if field == "" {
		return
	}
	if _, ok := grpcerr.FieldViolations(err)[field]; !ok {
		t.Errorf("error %v has field violations %v, want one on %q", err, grpcerr.FieldViolations(err), field)
	}
}

func TestImportAndListPapers(t *testing.T) {
	ctx := context.Background()
	s := start(t, nil)

	resp, err := s.client.ImportPapers(ctx, &digestv1.ImportPapersRequest{
		Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: readFixture(t),
	})
	if err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	if resp.GetCreatedCount() != 30 || resp.GetUpdatedCount() != 0 || len(resp.GetPaperIds()) != 30 || resp.GetPaperIds()[0] != "2606.00467" {
		t.Errorf("ImportPapers = created %d, updated %d, ids %v; want 30 created in document order",
			resp.GetCreatedCount(), resp.GetUpdatedCount(), resp.GetPaperIds())
	}

	list, err := s.client.ListPapers(ctx, &digestv1.ListPapersRequest{})
	if err != nil {
		t.Fatalf("ListPapers: %v", err)
	}
	papers := list.GetPapers()
	if len(papers) != 30 || list.GetNextPageToken() != "" {
		t.Fatalf("ListPapers = %d papers, next %q; want all 30 on the default page", len(papers), list.GetNextPageToken())
	}
	want := &digestv1.Paper{
		Id:           "2606.13681",
		Title:        "EvoArena: Tracking Memory Evolution for Robust LLM Agents in Dynamic Environments",
		Upvotes:      118,
		CommentCount: 3,
		GithubStars:  9,
		GithubRepo:   "https://github.com/Aiden0526/EvoArena",
		AiSummary:    "EvoArena benchmark and EvoMem memory paradigm address the challenge of dynamic environments in LLM agents by modeling progressive updates and structured memory evolution, showing improved performance on evolving tasks.",
		Url:          "https://huggingface.co/papers/2606.13681",
		FeaturedDay:  "2026-06-12",
		ProjectPage:  "https://aiden0526.github.io/EvoArena/",
	}
	if diff := cmp.Diff(want, papers[0], protocmp.Transform(),
		protocmp.IgnoreFields(&digestv1.Paper{}, "summary", "authors", "keywords", "publish_time", "submit_time", "update_time")); diff != "" {
		t.Errorf("top paper (-want +got):\n%s", diff)
	}
	if len(papers[0].GetAuthors()) != 14 || papers[0].GetPublishTime() == nil || papers[0].GetUpdateTime() == nil {
		t.Errorf("top paper lacks authors or times: %v", papers[0])
	}
	var order []string
	for i, p := range papers {
		order = append(order, p.GetId())
		if i > 0 {
			prev := papers[i-1]
			if prev.GetUpvotes() < p.GetUpvotes() || (prev.GetUpvotes() == p.GetUpvotes() && prev.GetId() > p.GetId()) {
				t.Errorf("papers %s (%d) and %s (%d) are out of order", prev.GetId(), prev.GetUpvotes(), p.GetId(), p.GetUpvotes())
			}
		}
	}

	for _, size := range []int32{1, 7, 29, 30, 31} {
		t.Run(fmt.Sprintf("walk with page size %d", size), func(t *testing.T) {
			var walked []string
			token := ""
			for range 100 {
				page, err := s.client.ListPapers(ctx, &digestv1.ListPapersRequest{PageSize: size, PageToken: token})
				if err != nil {
					t.Fatalf("ListPapers: %v", err)
				}
				for _, p := range page.GetPapers() {
					walked = append(walked, p.GetId())
				}
				if token = page.GetNextPageToken(); token == "" {
					break
				}
			}
			if diff := cmp.Diff(order, walked); diff != "" {
				t.Errorf("walk (-want +got):\n%s", diff)
			}
		})
	}

	// Import again with changed counts: everything is an update, and the
	// order follows the new upvotes.
	changed := strings.Replace(string(readFixture(t)), `"upvotes":0,`, `"upvotes":500,`, 1)
	resp, err = s.client.ImportPapers(ctx, &digestv1.ImportPapersRequest{
		Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: []byte(changed),
	})
	if err != nil {
		t.Fatalf("ImportPapers again: %v", err)
	}
	if resp.GetCreatedCount() != 0 || resp.GetUpdatedCount() != 30 {
		t.Errorf("ImportPapers again = created %d, updated %d; want 0 and 30", resp.GetCreatedCount(), resp.GetUpdatedCount())
	}
	top, err := s.client.ListPapers(ctx, &digestv1.ListPapersRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := top.GetPapers(); len(got) != 2 || got[0].GetId() != "2606.00467" || got[0].GetUpvotes() != 500 || got[1].GetId() != "2606.13681" {
		t.Errorf("top papers after refresh = %v, want 2606.00467 (500) then 2606.13681", got)
	}
	if n := s.rdb.ZCard(ctx, "dig:{papers}:by_upvotes").Val(); n != 30 {
		t.Errorf("rank index has %d entries after a refresh, want 30", n)
	}
}

func TestListPapersRejects(t *testing.T) {
	ctx := context.Background()
	s := start(t, nil)
	s.importFixture(t)
	big, err := s.client.ListPapers(ctx, &digestv1.ListPapersRequest{PageSize: 100000})
	if err != nil || len(big.GetPapers()) != 30 {
		t.Errorf("ListPapers(page_size 100000) = %d papers, %v; want it capped, not refused", len(big.GetPapers()), err)
	}
	tests := []struct {
		name  string
		req   *digestv1.ListPapersRequest
		field string
	}{
		{"negative page size", &digestv1.ListPapersRequest{PageSize: -1}, "page_size"},
		{"garbage token", &digestv1.ListPapersRequest{PageToken: "garbage"}, "page_token"},
		{"base64 of junk", &digestv1.ListPapersRequest{PageToken: "cDE6aGVsbG8"}, "page_token"},
		{"huge token", &digestv1.ListPapersRequest{PageToken: strings.Repeat("A", 100000)}, "page_token"},
		{"injected range", &digestv1.ListPapersRequest{PageToken: "[-"}, "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client.ListPapers(ctx, tt.req)
			wantCode(t, err, codes.InvalidArgument, tt.field)
		})
	}
}

func TestImport2024Shape(t *testing.T) {
	s := start(t, nil)
	data, err := os.ReadFile("../internal/hfdaily/testdata/hf-daily-papers-2024-shape.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.ImportPapers(context.Background(), &digestv1.ImportPapersRequest{
		Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: data,
	})
	if err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	if diff := cmp.Diff([]string{"2403.05530", "2403.04132", "hep-th/9901001"}, resp.GetPaperIds()); diff != "" {
		t.Errorf("paper ids (-want +got):\n%s", diff)
	}
	list, err := s.client.ListPapers(context.Background(), &digestv1.ListPapersRequest{FeaturedDay: "2024-03-11"})
	if err != nil || len(list.GetPapers()) != 2 || list.GetPapers()[1].GetTitle() != "Title only on the entry" {
		t.Errorf("ListPapers(2024-03-11) = %v, %v; want the 2 papers featured that day (the entry's publishedAt), titles taken from the entry where the paper has none", list, err)
	}
}

func TestImportRejects(t *testing.T) {
	s := start(t, nil)
	entry := func(id, title string) string {
		return fmt.Sprintf(`{"paper":{"id":%q,"title":%q,"upvotes":1}}`, id, title)
	}
	manyEntries := "[" + strings.TrimSuffix(strings.Repeat(entry("2606.00001", "T")+",", 5000), ",") + "]"
	tests := []struct {
		name   string
		format digestv1.PaperFormat
		data   string
		field  string
		want   string // in the violation's description
	}{
		{"format unspecified", digestv1.PaperFormat_PAPER_FORMAT_UNSPECIFIED, "[" + entry("2606.00001", "T") + "]", "format", "PAPER_FORMAT_HF_DAILY_JSON"},
		{"unknown format", digestv1.PaperFormat(42), "[" + entry("2606.00001", "T") + "]", "format", "PAPER_FORMAT_HF_DAILY_JSON"},
		{"empty data", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, "", "data", "empty"},
		{"not JSON", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, "<html>hello</html>", "data", "not JSON"},
		{"JSON object", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, `{"papers":[]}`, "data", "not a JSON array"},
		{"bad id", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, "[" + entry("2606.00001", "T") + "," + entry("../../etc/passwd", "T") + "]", "data", `entry 1: paper.id "../../etc/passwd" is not an arXiv id`},
		{"empty title", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, "[" + entry("2606.00001", " \t ") + "]", "data", "entry 0: paper 2606.00001: title is empty"},
		{"9 MiB", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, `["` + strings.Repeat("x", 9<<20) + `"]`, "data", "the limit is 8388608"},
		{"5000 entries", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, manyEntries, "data", "more than 2000 entries"},
		{"deeply nested", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, strings.Repeat("[", 50000) + strings.Repeat("]", 50000), "data", "nested deeper"},
		{"one bad entry among good ones", digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, "[" + entry("2606.00001", "A") + "," + entry("2606.00002", "B") + `,{"paper":{"id":"2606.00003","title":"C","upvotes":"many"}}]`, "data", "entry 2: paper.upvotes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client.ImportPapers(context.Background(), &digestv1.ImportPapersRequest{Format: tt.format, Data: []byte(tt.data)})
			wantCode(t, err, codes.InvalidArgument, tt.field)
			if got := grpcerr.FieldViolations(err)[tt.field]; !strings.Contains(got, tt.want) {
				t.Errorf("violation on %s = %q, want it to contain %q", tt.field, got, tt.want)
			}
			if keys := s.digKeys(t); len(keys) != 0 {
				t.Errorf("a refused import stored keys %v", keys)
			}
		})
	}

	t.Run("beyond the transport limit", func(t *testing.T) {
		_, err := s.client.ImportPapers(context.Background(), &digestv1.ImportPapersRequest{
			Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: make([]byte, 20<<20),
		})
		wantCode(t, err, codes.ResourceExhausted, "")
		if keys := s.digKeys(t); len(keys) != 0 {
			t.Errorf("a refused import stored keys %v", keys)
		}
	})
}

func TestRunDigest(t *testing.T) {
	s := start(t, nil)
	s.importFixture(t)
	s.subs.SetDue(due(3)...)

	run := s.runDigest(t, "2026-06-12", false)
	if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3, Queued: 3}, countsOf(run)); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	wantPapers := []string{"2606.13681", "2606.13392", "2606.08063", "2606.13289", "2606.13106",
		"2606.12243", "2606.06113", "2606.12303", "2606.11662", "2606.11409"}
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
	if got, want := content.GetSubject(), "paperroute · 12 Jun 2026 · EvoArena: Tracking Memory Evolution…"; got != want {
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
	for _, d := range due(3) {
		want = append(want, &senderv1.OutboundMessage{
			IdempotencyKey:     "digest:" + d.GetSubscriberId() + ":2026-06-12",
			Recipient:          d.GetEmail(),
			Lane:               senderv1.Lane_LANE_BULK,
			ContentId:          queued[0].GetContentId(),
			Variables:          map[string]string{"unsubscribe_url": d.GetUnsubscribeUrl()},
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
		puts, batches := len(s.sender.Puts()), s.sender.Batches()
		run := s.runDigest(t, "2026-06-14", true)
		if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3}, countsOf(run)); diff != "" {
			t.Errorf("dry run (-want +got):\n%s", diff)
		}
		if !run.GetDryRun() || len(run.GetPaperIds()) != 10 {
			t.Errorf("dry run = %v, want dry_run and the 10 papers it would send", run)
		}
		if len(s.sender.Puts()) != puts || s.sender.Batches() != batches {
			t.Errorf("dry run called the sender: %d PutContent and %d Enqueue calls before, %d and %d after",
				puts, batches, len(s.sender.Puts()), s.sender.Batches())
		}
	})
}

func TestRunDigestPagesThroughSubscribers(t *testing.T) {
	s := start(t, map[string]string{"DIGEST_PAPERS_PER_EDITION": "3"})
	s.importFixture(t)
	s.subs.SetDue(due(1201)...)
	run := s.runDigest(t, "2026-06-12", false)
	if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 1201, Queued: 1201}, countsOf(run)); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	if got := s.subs.Calls(); got != 3 {
		t.Errorf("ListDueSubscribers called %d times, want 3 pages of up to 500", got)
	}
	if got := s.sender.Batches(); got != 3 {
		t.Errorf("Enqueue called %d times, want one batch per page", got)
	}
	if got := len(run.GetPaperIds()); got != 3 {
		t.Errorf("edition has %d papers, want DIGEST_PAPERS_PER_EDITION=3", got)
	}
}

func TestRunDigestWithoutPapersSkipsEveryone(t *testing.T) {
	s := start(t, nil)
	s.subs.SetDue(due(3)...)
	run := s.runDigest(t, "2026-06-12", false)
	if diff := cmp.Diff(counts{State: "SUCCEEDED", Due: 3, Skipped: 3}, countsOf(run)); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	if len(s.sender.Puts()) != 0 || s.sender.Batches() != 0 {
		t.Error("a run without papers called the sender")
	}
}

func TestRunDigestFailures(t *testing.T) {
	tests := []struct {
		name      string
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
		name:      "sender put content fails",
		breakIt:   func(s *service) { s.sender.FailPutContent(status.Error(codes.Internal, "disk full")) },
		want:      counts{State: "FAILED"},
		wantError: "could not store the edition's content in the sender",
	}, {
		name:      "subscriber service fails",
		breakIt:   func(s *service) { s.subs.FailWith(status.Error(codes.Internal, "boom")) },
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
	}, {
		name: "subscriber without an unsubscribe URL",
		breakIt: func(s *service) {
			d := due(3)
			d[2].UnsubscribeUrl = ""
			s.subs.SetDue(d...)
		},
		want:      counts{State: "SUCCEEDED", Due: 3, Queued: 2, Failed: 1},
		wantError: "without an id, address or unsubscribe URL",
		queued:    2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, nil)
			s.importFixture(t)
			s.subs.SetDue(due(3)...)
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
	s.subs.SetDue(due(3)...)
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

func TestAuth(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	calls := map[string]func(digestv1.DigestServiceClient) error{
		"ImportPapers": func(c digestv1.DigestServiceClient) error {
			_, err := c.ImportPapers(ctx, &digestv1.ImportPapersRequest{})
			return err
		},
		"ListPapers": func(c digestv1.DigestServiceClient) error {
			_, err := c.ListPapers(ctx, &digestv1.ListPapersRequest{})
			return err
		},
		"UpsertPapers": func(c digestv1.DigestServiceClient) error {
			_, err := c.UpsertPapers(ctx, &digestv1.UpsertPapersRequest{})
			return err
		},
		"GetPaper": func(c digestv1.DigestServiceClient) error {
			_, err := c.GetPaper(ctx, &digestv1.GetPaperRequest{})
			return err
		},
		"DeletePaper": func(c digestv1.DigestServiceClient) error {
			_, err := c.DeletePaper(ctx, &digestv1.DeletePaperRequest{})
			return err
		},
		"RunDigest": func(c digestv1.DigestServiceClient) error {
			_, err := c.RunDigest(ctx, &digestv1.RunDigestRequest{Edition: "bad"})
			return err
		},
		"GetDigestRun": func(c digestv1.DigestServiceClient) error {
			_, err := c.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{})
			return err
		},
	}
	for _, m := range digestv1.DigestService_ServiceDesc.Methods {
		if _, ok := calls[m.MethodName]; !ok {
			t.Errorf("method %s has no auth test", m.MethodName)
		}
	}
	clients := []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"no token", "", codes.Unauthenticated},
		{"wrong token", "not-the-token", codes.Unauthenticated},
		{"service token", peertest.Tokens.Service, codes.PermissionDenied},
	}
	for name, call := range calls {
		for _, c := range clients {
			t.Run(name+" with "+c.name, func(t *testing.T) {
				err := call(digestv1.NewDigestServiceClient(dial(t, s.addr, c.token)))
				wantCode(t, err, c.want, "")
			})
		}
		t.Run(name+" with the admin token", func(t *testing.T) {
			if code := status.Code(call(s.client)); code == codes.Unauthenticated || code == codes.PermissionDenied {
				t.Errorf("admin call refused: %v", code)
			}
		})
	}
	if keys := s.digKeys(t); len(keys) != 0 {
		t.Errorf("refused calls stored keys %v", keys)
	}
}

func TestHTTP(t *testing.T) {
	s := start(t, nil)
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "grpc_server_handled_total"} {
		resp, err := http.Get(s.httpURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		_, _ = fmt.Fprint(body, readAll(t, resp))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), want) {
			t.Errorf("GET %s = %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	s.redis.Kill()
	resp, err := http.Get(s.httpURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz with Redis down = %d, want 503", resp.StatusCode)
	}
	s.redis.Restart()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestRunFailsFast(t *testing.T) {
	base := map[string]string{
		"PAPERROUTE_ADMIN_TOKEN":   peertest.Tokens.Admin,
		"PAPERROUTE_SERVICE_TOKEN": peertest.Tokens.Service,
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unreachable redis", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0?dial_timeout=200ms"}, "redis"},
		{"bad redis URL", map[string]string{"REDIS_URL": "http://example.com"}, "unsupported scheme"},
		{"missing token", map[string]string{"PAPERROUTE_ADMIN_TOKEN": ""}, "PAPERROUTE_ADMIN_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			grpcLis, httpLis := listen(t), listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := digestd.Run(ctx, envload.MapGetenv(env, nil), digestd.Deps{Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Error("Run did not fail fast")
			}
			if _, err := net.Dial("tcp", grpcLis.Addr().String()); err == nil {
				t.Error("Run left the gRPC listener open after failing")
			}
		})
	}
}
