package digestd_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/grpcerr"
)

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
