package grpcapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
)

const (
	hf2026   = "../hfdaily/testdata/hf-daily-papers-2026-06-12.json"
	hf2024   = "../hfdaily/testdata/hf-daily-papers-2024-shape.json"
	atomFeed = "../arxiv/testdata/arxiv-atom-sample.xml"
)

func TestImportPapers(t *testing.T) {
	hfJSON := digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON
	atom := digestv1.PaperFormat_PAPER_FORMAT_ARXIV_ATOM
	tests := []struct {
		name        string
		format      digestv1.PaperFormat
		data        []byte
		wantCode    codes.Code
		wantField   string
		wantCreated int32
	}{
		{"HF 2026 shape", hfJSON, readFile(t, hf2026), codes.OK, "", 30},
		{"HF 2024 shape", hfJSON, readFile(t, hf2024), codes.OK, "", 3},
		{"arXiv Atom", atom, readFile(t, atomFeed), codes.OK, "", 1},
		{"empty HF list", hfJSON, []byte(`[]`), codes.OK, "", 0},
		{"format unset", digestv1.PaperFormat_PAPER_FORMAT_UNSPECIFIED, []byte(`[]`), codes.InvalidArgument, "format", 0},
		{"unknown format number", digestv1.PaperFormat(99), []byte(`[]`), codes.InvalidArgument, "format", 0},
		{"no data", hfJSON, nil, codes.InvalidArgument, "data", 0},
		{"bad JSON", hfJSON, []byte(`[{"paper":`), codes.InvalidArgument, "data", 0},
		{"HTML instead of JSON", hfJSON, []byte(`<html><body>Too many requests</body></html>`), codes.InvalidArgument, "data", 0},
		{"Atom sent as JSON", hfJSON, readFile(t, atomFeed), codes.InvalidArgument, "data", 0},
		{"JSON sent as Atom", atom, readFile(t, hf2026), codes.InvalidArgument, "data", 0},
		{"missing id", hfJSON, []byte(`[{"paper":{"id":"2606.00001","title":"A"}},{"paper":{"title":"B"}}]`), codes.InvalidArgument, "data", 0},
		{"absurd date", hfJSON, []byte(`[{"paper":{"id":"2606.00001","title":"A","submittedOnDailyAt":"9999-12-31T00:00:00Z"}}]`), codes.InvalidArgument, "data", 0},
		{"oversized", hfJSON, []byte(`[` + strings.Repeat(" ", maxImportBytes) + `]`), codes.InvalidArgument, "data", 0},
		{"far over the limit", hfJSON, make([]byte, 4*maxImportBytes), codes.ResourceExhausted, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			resp, err := h.client.ImportPapers(context.Background(), &digestv1.ImportPapersRequest{Format: tt.format, Data: tt.data})
			wantCode(t, err, tt.wantCode, tt.wantField)
			if err != nil {
				if ids := h.stored(t); len(ids) != 0 {
					t.Errorf("a refused import stored %q", ids)
				}
				return
			}
			if resp.GetCreatedCount() != tt.wantCreated || resp.GetUpdatedCount() != 0 || len(resp.GetPaperIds()) != int(tt.wantCreated) {
				t.Errorf("ImportPapers = %v, want %d created", resp, tt.wantCreated)
			}
			if got := len(h.stored(t)); got != int(tt.wantCreated) {
				t.Errorf("%d papers stored, want %d", got, tt.wantCreated)
			}
		})
	}
}

// TestImportSourcesMerge imports a paper from the daily list and then from
// arXiv: the feed, which has no counts, keeps the upvotes and the featured
// day, and a later daily list without githubStars keeps the stars.
func TestImportSourcesMerge(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	hf := `[{"paper":{"id":"2606.13677","title":"Mana","upvotes":40,"githubStars":12,"submittedOnDailyAt":"2026-06-12T00:00:00.000Z"},"numComments":2}]`
	if _, err := h.client.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: []byte(hf)}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_ARXIV_ATOM, Data: readFile(t, atomFeed)})
	if err != nil || resp.GetUpdatedCount() != 1 {
		t.Fatalf("arXiv import = %v, %v; want 1 updated", resp, err)
	}
	later := `[{"paper":{"id":"2606.13677v2","title":"Mana","upvotes":75,"submittedOnDailyAt":"2026-06-12T00:00:00.000Z"},"numComments":5}]`
	if _, err := h.client.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: []byte(later)}); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.GetPaper(ctx, &digestv1.GetPaperRequest{Id: "2606.13677"})
	if err != nil {
		t.Fatal(err)
	}
	want := &digestv1.Paper{
		Id: "2606.13677", Title: "Mana", Upvotes: 75, CommentCount: 5, GithubStars: 12,
		Authors:     []string{"Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu"},
		ProjectPage: "https://zhaohengyin.github.io/mana", FeaturedDay: "2026-06-12",
		PublishTime: timestamppb.New(time.Date(2026, 6, 11, 17, 59, 49, 0, time.UTC)),
		SubmitTime:  timestamppb.New(time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC)),
		UpdateTime:  timestamppb.New(now), Url: "https://huggingface.co/papers/2606.13677",
	}
	if diff := cmp.Diff(want, got.GetPaper(), protocmp.Transform(),
		protocmp.IgnoreFields(&digestv1.Paper{}, "summary")); diff != "" {
		t.Errorf("merged paper (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.GetPaper().GetSummary(), "Articulated tool manipulation") {
		t.Errorf("summary %.40q…, want the arXiv abstract kept", got.GetPaper().GetSummary())
	}
}

func validPaper(id string) *digestv1.Paper {
	return &digestv1.Paper{Id: id, Title: "A title", Summary: "An abstract.", Authors: []string{"A. Author"},
		Upvotes: 3, GithubRepo: "https://github.com/a/b", FeaturedDay: "2026-06-12"}
}

func TestUpsertPapers(t *testing.T) {
	with := func(f func(p *digestv1.Paper)) []*digestv1.Paper {
		p := validPaper("2606.00002")
		f(p)
		return []*digestv1.Paper{validPaper("2606.00001"), p}
	}
	many := make([]*digestv1.Paper, 1001)
	for i := range many {
		many[i] = validPaper(fmt.Sprintf("2606.%05d", i))
	}
	tests := []struct {
		name      string
		papers    []*digestv1.Paper
		wantCode  codes.Code
		wantField string
	}{
		{"valid", with(func(*digestv1.Paper) {}), codes.OK, ""},
		{"versioned id", with(func(p *digestv1.Paper) { p.Id = "2606.00002v3" }), codes.OK, ""},
		{"no papers", nil, codes.InvalidArgument, "papers"},
		{"too many papers", many, codes.InvalidArgument, "papers"},
		{"missing id", with(func(p *digestv1.Paper) { p.Id = "" }), codes.InvalidArgument, "papers[1].id"},
		{"not an arXiv id", with(func(p *digestv1.Paper) { p.Id = "../../etc/passwd" }), codes.InvalidArgument, "papers[1].id"},
		{"duplicate id", with(func(p *digestv1.Paper) { p.Id = "2606.00001v2" }), codes.InvalidArgument, "papers[1].id"},
		{"missing title", with(func(p *digestv1.Paper) { p.Title = " \n " }), codes.InvalidArgument, "papers[1].title"},
		{"title too long", with(func(p *digestv1.Paper) { p.Title = strings.Repeat("x", 1001) }), codes.InvalidArgument, "papers[1].title"},
		{"negative upvotes", with(func(p *digestv1.Paper) { p.Upvotes = -1 }), codes.InvalidArgument, "papers[1].upvotes"},
		{"negative stars", with(func(p *digestv1.Paper) { p.GithubStars = -5 }), codes.InvalidArgument, "papers[1].github_stars"},
		{"plain http repo", with(func(p *digestv1.Paper) { p.GithubRepo = "http://github.com/a/b" }), codes.InvalidArgument, "papers[1].github_repo"},
		{"javascript project page", with(func(p *digestv1.Paper) { p.ProjectPage = "javascript:alert(1)" }), codes.InvalidArgument, "papers[1].project_page"},
		{"too many authors", with(func(p *digestv1.Paper) { p.Authors = make([]string, 201) }), codes.InvalidArgument, "papers[1].authors"},
		{"bad featured day", with(func(p *digestv1.Paper) { p.FeaturedDay = "12/06/2026" }), codes.InvalidArgument, "papers[1].featured_day"},
		{"featured day far ahead", with(func(p *digestv1.Paper) { p.FeaturedDay = "9999-12-31" }), codes.InvalidArgument, "papers[1].featured_day"},
		{"featured day not the submit day", with(func(p *digestv1.Paper) { p.SubmitTime = timestamppb.New(now) }), codes.InvalidArgument, "papers[1].featured_day"},
		{"invalid timestamp", with(func(p *digestv1.Paper) { p.PublishTime = &timestamppb.Timestamp{Seconds: 1 << 60} }), codes.InvalidArgument, "papers[1].publish_time"},
		{"publish time before arXiv", with(func(p *digestv1.Paper) { p.PublishTime = timestamppb.New(now.AddDate(-40, 0, 0)) }), codes.InvalidArgument, "papers[1].publish_time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			resp, err := h.client.UpsertPapers(context.Background(), &digestv1.UpsertPapersRequest{Papers: tt.papers})
			wantCode(t, err, tt.wantCode, tt.wantField)
			if err != nil {
				if ids := h.stored(t); len(ids) != 0 {
					t.Errorf("a refused upsert stored %q (all or nothing)", ids)
				}
				return
			}
			if diff := cmp.Diff([]string{"2606.00001", "2606.00002"}, resp.GetPaperIds()); diff != "" || resp.GetCreatedCount() != 2 {
				t.Errorf("UpsertPapers = %v (ids -want +got:\n%s)", resp, diff)
			}
		})
	}

	t.Run("update keeps what is not given", func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		if _, err := h.client.UpsertPapers(ctx, &digestv1.UpsertPapersRequest{Papers: []*digestv1.Paper{validPaper("2606.00001")}}); err != nil {
			t.Fatal(err)
		}
		resp, err := h.client.UpsertPapers(ctx, &digestv1.UpsertPapersRequest{Papers: []*digestv1.Paper{{Id: "2606.00001", Title: "Fixed", Upvotes: 9}}})
		if err != nil || resp.GetUpdatedCount() != 1 || resp.GetCreatedCount() != 0 {
			t.Fatalf("UpsertPapers = %v, %v; want 1 updated", resp, err)
		}
		got, err := h.client.GetPaper(ctx, &digestv1.GetPaperRequest{Id: "2606.00001"})
		if err != nil {
			t.Fatal(err)
		}
		p := got.GetPaper()
		if p.GetTitle() != "Fixed" || p.GetUpvotes() != 9 || p.GetSummary() != "An abstract." || p.GetGithubRepo() != "https://github.com/a/b" || p.GetFeaturedDay() != "2026-06-12" {
			t.Errorf("updated paper = %v; want the new title and upvotes, the rest kept", p)
		}
		if got := p.GetSubmitTime().AsTime(); !got.Equal(time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("submit_time = %v, want the given featured day at 00:00 UTC", got)
		}
	})
}

func TestGetAndDeletePaper(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	if _, err := h.client.UpsertPapers(ctx, &digestv1.UpsertPapersRequest{Papers: []*digestv1.Paper{validPaper("2606.00001"), validPaper("hep-th/9901001")}}); err != nil {
		t.Fatal(err)
	}
	gets := []struct {
		name     string
		id       string
		wantCode codes.Code
	}{
		{"stored", "2606.00001", codes.OK},
		{"versioned", "2606.00001v7", codes.OK},
		{"old style", "hep-th/9901001", codes.OK},
		{"unknown", "2606.99999", codes.NotFound},
		{"empty id", "", codes.InvalidArgument},
		{"not an id", "2606.00001; DEL *", codes.InvalidArgument},
		{"huge id", strings.Repeat("9", 100000), codes.InvalidArgument},
	}
	for _, tt := range gets {
		t.Run("get "+tt.name, func(t *testing.T) {
			resp, err := h.client.GetPaper(ctx, &digestv1.GetPaperRequest{Id: tt.id})
			field := ""
			if tt.wantCode == codes.InvalidArgument {
				field = "id"
			}
			wantCode(t, err, tt.wantCode, field)
			if err == nil && !strings.HasPrefix(tt.id, resp.GetPaper().GetId()) {
				t.Errorf("GetPaper(%q) = %v", tt.id, resp.GetPaper())
			}
		})
	}
	deletes := []struct {
		name      string
		id        string
		wantCode  codes.Code
		wantField string
	}{
		{"bad id", "nope", codes.InvalidArgument, "id"},
		{"stored", "2606.00001v2", codes.OK, ""},
		{"again", "2606.00001", codes.NotFound, ""},
		{"unknown", "2606.99999", codes.NotFound, ""},
	}
	for _, tt := range deletes {
		t.Run("delete "+tt.name, func(t *testing.T) {
			_, err := h.client.DeletePaper(ctx, &digestv1.DeletePaperRequest{Id: tt.id})
			wantCode(t, err, tt.wantCode, tt.wantField)
		})
	}
	if diff := cmp.Diff([]string{"hep-th/9901001"}, h.stored(t)); diff != "" {
		t.Errorf("stored after delete (-want +got):\n%s", diff)
	}
	_, err := h.client.GetPaper(ctx, &digestv1.GetPaperRequest{Id: "2606.00001"})
	wantCode(t, err, codes.NotFound, "")
}

func TestListPapers(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	for _, doc := range []string{hf2026, hf2024} {
		if _, err := h.client.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: readFile(t, doc)}); err != nil {
			t.Fatal(err)
		}
	}
	days := func(req *digestv1.ListPapersRequest) map[string]int {
		resp, err := h.client.ListPapers(ctx, req)
		if err != nil {
			t.Fatalf("ListPapers(%v): %v", req, err)
		}
		n := map[string]int{}
		for _, p := range resp.GetPapers() {
			n[p.GetFeaturedDay()]++
		}
		return n
	}
	// hep-th/9901001 has no featured or publish day: it counts as featured
	// on the day it was imported.
	tests := []struct {
		day  string
		want map[string]int
	}{
		{"2026-06-12", map[string]int{"2026-06-12": 30}},
		{"2024-03-11", map[string]int{"2024-03-11": 2}},
		{"2026-06-13", map[string]int{"2026-06-13": 1}},
		{"2026-06-11", map[string]int{}},
		{"", map[string]int{"2026-06-13": 1, "2026-06-12": 30, "2024-03-11": 2}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, days(&digestv1.ListPapersRequest{FeaturedDay: tt.day, PageSize: 100})); diff != "" {
			t.Errorf("ListPapers(featured_day %q) days (-want +got):\n%s", tt.day, diff)
		}
	}
	first, err := h.client.ListPapers(ctx, &digestv1.ListPapersRequest{FeaturedDay: "2026-06-12", PageSize: 5})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page = %v, %v", first, err)
	}
	if first.GetPapers()[0].GetId() != "2606.13681" {
		t.Errorf("top paper of 2026-06-12 = %s, want the most upvoted, 2606.13681", first.GetPapers()[0].GetId())
	}
	bad := []struct {
		name  string
		req   *digestv1.ListPapersRequest
		field string
	}{
		{"bad day", &digestv1.ListPapersRequest{FeaturedDay: "2026-13-01"}, "featured_day"},
		{"day far ahead", &digestv1.ListPapersRequest{FeaturedDay: "2999-01-01"}, "featured_day"},
		{"negative page size", &digestv1.ListPapersRequest{PageSize: -1}, "page_size"},
		{"garbage token", &digestv1.ListPapersRequest{PageToken: "garbage"}, "page_token"},
		{"token of another day", &digestv1.ListPapersRequest{FeaturedDay: "2024-03-11", PageToken: first.GetNextPageToken()}, "page_token"},
		{"huge token", &digestv1.ListPapersRequest{PageToken: strings.Repeat("A", 100000)}, "page_token"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.ListPapers(ctx, tt.req)
			wantCode(t, err, codes.InvalidArgument, tt.field)
		})
	}
}
