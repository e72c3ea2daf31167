package poller_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/digest/internal/poller"
)

func TestParseSources(t *testing.T) {
	tests := []struct {
		spec    string
		want    []poller.Source
		wantErr string
	}{
		{"", nil, ""},
		{"off", nil, ""},
		{"hf", []poller.Source{{Name: "hf", Kind: poller.KindHFDaily, BaseURL: poller.HFDailyURL}}, ""},
		{" hf , arxiv:cs.LG ", []poller.Source{
			{Name: "hf", Kind: poller.KindHFDaily, BaseURL: poller.HFDailyURL},
			{Name: "arxiv:cs.LG", Kind: poller.KindArxiv, BaseURL: poller.ArxivURL, Category: "cs.LG"},
		}, ""},
		{"hf:http://127.0.0.1:9000/api/daily_papers", []poller.Source{{Name: "hf", Kind: poller.KindHFDaily, BaseURL: "http://127.0.0.1:9000/api/daily_papers"}}, ""},
		{"arxiv:hep-th@http://127.0.0.1:9001/api/query", []poller.Source{{Name: "arxiv:hep-th", Kind: poller.KindArxiv, BaseURL: "http://127.0.0.1:9001/api/query", Category: "hep-th"}}, ""},
		{"hf,hf", nil, "listed twice"},
		{"rss:https://example.com", nil, "want hf"},
		{"arxiv:", nil, "want arxiv:<category>"},
		{"arxiv:cs.LG OR all", nil, "want arxiv:<category>"},
		{"hf:ftp://example.com", nil, "not an http(s) URL"},
		{"hf:https://example.com/?date=x", nil, "not an http(s) URL"},
		{"off,hf", nil, "want hf"},
	}
	for _, tt := range tests {
		got, err := poller.ParseSources(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSources(%q) error = %v, want one containing %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSources(%q) = %v", tt.spec, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSources(%q) (-want +got):\n%s", tt.spec, diff)
		}
	}
}

func TestDailyURLsCrossMonths(t *testing.T) {
	src := poller.Source{Kind: poller.KindHFDaily, BaseURL: "https://x.test/api/daily_papers"}
	got := src.URLs(now.AddDate(0, 0, -12).Add(-11*3600e9), 3) // 2026-06-01 minus 11h → 2026-05-31 23:00 UTC
	want := []string{
		"https://x.test/api/daily_papers?date=2026-05-31",
		"https://x.test/api/daily_papers?date=2026-05-30",
		"https://x.test/api/daily_papers?date=2026-05-29",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("URLs (-want +got):\n%s", diff)
	}
}
