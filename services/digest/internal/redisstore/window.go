package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

// windowBatch is how many papers one MGET reads.
const windowBatch = 500

// WindowPapers implements digest.PaperStore. It reads the by_day index
// for the window's days (a day more on each side: FeaturedAt falls on the
// featured day, the margin only guards against a record where it does
// not), reads those papers and keeps those featured (ranking.FeaturedAt)
// in [from, to]: a run reads the few hundred papers of its window, not
// the whole library.
//
// Papers stored before the by_day index existed are in the id hash but
// not the index; while there are any (the two differ in size) it reads
// every paper instead.
func (s *Store) WindowPapers(ctx context.Context, from, to time.Time) ([]paper.Paper, error) {
	var all *redis.IntCmd
	var indexed *redis.IntCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HLen(ctx, keyAll)
		indexed = p.ZCard(ctx, keyByDay)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisstore: window papers: %w", err)
	}
	if all.Val() != indexed.Val() {
		return s.scanWindow(ctx, from, to)
	}
	// Later days sort first in by_day.
	first, last := dayRank(paper.Day(to.AddDate(0, 0, 1))), dayRank(paper.Day(from.AddDate(0, 0, -1)))
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: keyByDay, Start: "[" + first + ":", Stop: "(" + last + ";", ByLex: true, // ';' follows ':'
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: window papers: %w", err)
	}
	var out []paper.Paper
	for start := 0; start < len(members); start += windowBatch {
		batch := members[start:min(start+windowBatch, len(members))]
		ids := make([]string, len(batch))
		for i, m := range batch {
			sub := dayMemberPattern.FindStringSubmatch(m)
			if sub == nil {
				return nil, fmt.Errorf("redisstore: window papers: malformed index member %q", m)
			}
			ids[i] = sub[3]
		}
		papers, err := s.getMany(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("redisstore: window papers: %w", err)
		}
		out = appendFeatured(out, papers, from, to)
	}
	return out, nil
}

// scanWindow is WindowPapers by reading every stored paper.
func (s *Store) scanWindow(ctx context.Context, from, to time.Time) ([]paper.Paper, error) {
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
		var papers []paper.Paper
		for i, v := range values {
			raw, ok := v.(string)
			if !ok {
				continue // deleted between the two reads
			}
			var r record
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				return nil, fmt.Errorf("redisstore: decode %s: %w", keys[i], err)
			}
			papers = append(papers, r.paper())
		}
		out = appendFeatured(out, papers, from, to)
	}
	return out, nil
}

// appendFeatured appends to out the papers featured in [from, to].
func appendFeatured(out, papers []paper.Paper, from, to time.Time) []paper.Paper {
	for _, p := range papers {
		if f := ranking.FeaturedAt(p); !f.Before(from) && !f.After(to) {
			out = append(out, p)
		}
	}
	return out
}
