// Package sample holds the bundled sample papers of the dev mode: a real
// Hugging Face daily papers API response (12 June 2026), loaded into the
// dev stack so the demo digest has content. Tests use it as a fixture too.
package sample

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

// Papers is the sample document, in the PAPER_FORMAT_HF_DAILY_JSON format.
//
//go:embed hf-daily-papers-2026-06-12.json
var Papers []byte

// File is where the sample lives in the repository, for the printed grpcurl
// commands.
const File = "cmd/paperroute/internal/devmode/sample/hf-daily-papers-2026-06-12.json"

// Day is the day the sample's papers were featured on the daily list.
const Day = "2026-06-12"

// PapersFeaturedOn returns the sample with every paper's featured time
// (paper.submittedOnDailyAt) moved from Day to day, keeping the time of
// day. Digest editions carry only papers featured in a recent window, so
// the dev mode imports the sample as if it were featured today: that is
// what makes its papers count as new in the demo digest.
func PapersFeaturedOn(day time.Time) ([]byte, error) {
	var entries []map[string]any
	if err := json.Unmarshal(Papers, &entries); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	from, _ := time.Parse(time.DateOnly, Day)
	shift := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC).Sub(from)
	for _, e := range entries {
		p, ok := e["paper"].(map[string]any)
		if !ok {
			continue
		}
		s, ok := p["submittedOnDailyAt"].(string)
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("sample: paper %v: submittedOnDailyAt: %w", p["id"], err)
		}
		p["submittedOnDailyAt"] = t.Add(shift).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return json.Marshal(entries)
}
