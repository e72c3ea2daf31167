package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

// windowBatch is how many papers one MGET reads.
const windowBatch = 500

// WindowPapers implements digest.PaperStore. It reads every stored paper
// and keeps those featured in [from, to]: a run does this once, and the
// store holds thousands of papers, not millions (a paper is ~2 KB; a year
// of the daily list is ~20,000 of them, ~40 MB, read in well under a
// second).
func (s *Store) WindowPapers(ctx context.Context, from, to time.Time) ([]paper.Paper, error) {
	ids, err := s.rdb.HKeys(ctx, keyAll).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: window papers: %w", err)
	}
	var out []paper.Paper
	for start := 0; start < len(ids); start += windowBatch {
		batch := ids[start:min(start+windowBatch, len(ids))]
		keys := make([]string, len(batch))
		for i, id := range batch {
			keys[i] = paperKey(id)
		}
		values, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: window papers: %w", err)
		}
		for i, v := range values {
			raw, ok := v.(string)
			if !ok {
				continue // deleted between the two reads
			}
			var r record
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				return nil, fmt.Errorf("redisstore: decode %s: %w", keys[i], err)
			}
			p := r.paper()
			if f := ranking.FeaturedAt(p); !f.Before(from) && !f.After(to) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
