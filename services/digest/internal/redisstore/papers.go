// Package redisstore keeps the digest service's papers and runs in Redis,
// under keys prefixed "dig:".
//
// Papers (every key shares the hash tag {papers}, so an import's
// transaction, which writes all of them atomically, works on Redis Cluster
// too; papers are few and small, one slot holds years of them):
//
//	dig:{papers}:paper:<arXiv id>  STRING  the paper as JSON
//	dig:{papers}:all               HASH    arXiv id → its member in by_day
//	                                       (its by_upvotes member is the
//	                                       part after the first ':')
//	dig:{papers}:by_upvotes        ZSET    every score 0; member
//	                                       "<2147483647-upvotes, 10 digits>:<id>",
//	                                       so lexical order is most upvoted
//	                                       first, ties by id, and a member is
//	                                       an exact pagination cursor
//	dig:{papers}:by_day            ZSET    every score 0; member
//	                                       "<99999999-YYYYMMDD>:<by_upvotes member>",
//	                                       so lexical order is newest featured
//	                                       day first, then most upvoted
//
// Runs (one key each, so nothing spans slots):
//
//	dig:run:<ULID>                 HASH    edition, state, dry_run, counts,
//	                                       paper_ids, create_time,
//	                                       finish_time, error; TTL 90 days
//
// The source poller's lease (see lease.go):
//
//	dig:poller:lease               STRING  the holder's id; PX the lease
package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

const (
	keyAll       = "dig:{papers}:all"
	keyByUpvotes = "dig:{papers}:by_upvotes"
	keyByDay     = "dig:{papers}:by_day"
	paperPrefix  = "dig:{papers}:paper:"
)

func paperKey(id string) string { return paperPrefix + id }

// Store is the Redis implementation of digest.PaperStore and
// digest.RunStore.
type Store struct {
	rdb redis.UniversalClient
}

var (
	_ digest.PaperStore = (*Store)(nil)
	_ digest.RunStore   = (*Store)(nil)
	_ library.Store     = (*Store)(nil)
)

// New returns a Store on rdb.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// record is a paper as stored; its JSON names are the storage format.
type record struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Summary     string    `json:"summary,omitempty"`
	Authors     []string  `json:"authors,omitempty"`
	Upvotes     int       `json:"upvotes"`
	Comments    int       `json:"comments,omitempty"`
	GitHubStars int       `json:"github_stars,omitempty"`
	GitHubRepo  string    `json:"github_repo,omitempty"`
	ProjectPage string    `json:"project_page,omitempty"`
	AISummary   string    `json:"ai_summary,omitempty"`
	Keywords    []string  `json:"keywords,omitempty"`
	PublishTime time.Time `json:"publish_time,omitzero"`
	SubmitTime  time.Time `json:"submit_time,omitzero"`
	UpdateTime  time.Time `json:"update_time,omitzero"`
	FeaturedDay string    `json:"featured_day,omitempty"`
	// Counted is which counts a source ever reported (paper.CountSet).
	Counted paper.CountSet `json:"counted,omitempty"`
}

func toRecord(p paper.Paper) record {
	return record(p)
}

func (r record) paper() paper.Paper {
	return paper.Paper(r)
}

// rankMember is the paper's member in by_upvotes.
func rankMember(p paper.Paper) string {
	return fmt.Sprintf("%010d:%s", paper.MaxCount-p.Upvotes, p.ID)
}

var memberPattern = regexp.MustCompile(`^[0-9]{10}:(.+)$`)

// dayMember is the paper's member in by_day.
func dayMember(p paper.Paper) string {
	return dayRank(p.FeaturedDay) + ":" + rankMember(p)
}

// dayRank is "99999999 - YYYYMMDD", 8 digits, so that later days sort
// first; a malformed day sorts last.
func dayRank(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return "99999999"
	}
	return fmt.Sprintf("%08d", 99999999-(t.Year()*10000+int(t.Month())*100+t.Day()))
}

var dayMemberPattern = regexp.MustCompile(`^([0-9]{8}):([0-9]{10}:(.+))$`)

// maxTxAttempts bounds the retries of an optimistic transaction that lost
// a race with a concurrent import or delete; between attempts the writer
// waits a random time up to 1 ms, doubling to at most 64 ms, so that
// racing writers spread out.
const maxTxAttempts = 50

// UpsertPapers implements library.Store and digest.PaperStore. It reads the
// stored versions, merges (paper.Merge) and writes papers and indexes in one
// MULTI/EXEC under WATCH of the id hash, which every write changes: either
// all papers are stored or none, and an import racing another is retried on
// fresh data rather than overwriting it.
func (s *Store) UpsertPapers(ctx context.Context, papers []paper.Paper) (int, error) {
	if len(papers) == 0 {
		return 0, nil
	}
	ids := make([]string, len(papers))
	keys := make([]string, len(papers))
	for i, p := range papers {
		ids[i], keys[i] = p.ID, paperKey(p.ID)
	}
	var created int
	txf := func(tx *redis.Tx) error {
		created = 0
		stored, err := tx.MGet(ctx, keys...).Result()
		if err != nil {
			return err
		}
		members, err := tx.HMGet(ctx, keyAll, ids...).Result()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, next := range papers {
				merged := next
				if raw, ok := stored[i].(string); ok {
					var r record
					if err := json.Unmarshal([]byte(raw), &r); err != nil {
						return fmt.Errorf("decode stored %s: %w", keys[i], err)
					}
					merged = paper.Merge(r.paper(), next)
				}
				if merged.FeaturedDay == "" {
					merged.FeaturedDay = paper.Day(merged.UpdateTime)
				}
				b, err := json.Marshal(toRecord(merged))
				if err != nil {
					return fmt.Errorf("encode paper %s: %w", next.ID, err)
				}
				member := dayMember(merged)
				prev, ok := members[i].(string)
				switch {
				case !ok:
					created++
				case prev != member:
					removeIndexEntries(ctx, pipe, prev)
				}
				pipe.ZAdd(ctx, keyByDay, redis.Z{Member: member})
				pipe.ZAdd(ctx, keyByUpvotes, redis.Z{Member: rankMember(merged)})
				pipe.HSet(ctx, keyAll, next.ID, member)
				pipe.Set(ctx, keys[i], b, 0)
			}
			return nil
		})
		return err
	}
	if err := s.watch(ctx, txf); err != nil {
		return 0, fmt.Errorf("redisstore: upsert %d papers: %w", len(papers), err)
	}
	return created, nil
}

// removeIndexEntries removes a paper's index entries given its member in
// the id hash (a by_day member; or, as stored before by_day existed, a
// by_upvotes member).
func removeIndexEntries(ctx context.Context, pipe redis.Pipeliner, member string) {
	if m := dayMemberPattern.FindStringSubmatch(member); m != nil {
		pipe.ZRem(ctx, keyByDay, member)
		pipe.ZRem(ctx, keyByUpvotes, m[2])
		return
	}
	pipe.ZRem(ctx, keyByUpvotes, member)
}

// watch runs txf under WATCH of the id hash, retrying when a concurrent
// write won the race.
func (s *Store) watch(ctx context.Context, txf func(*redis.Tx) error) error {
	for attempt := range maxTxAttempts {
		err := s.rdb.Watch(ctx, txf, keyAll)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("still contended after %d attempts", maxTxAttempts)
}

// GetPaper implements library.Store.
func (s *Store) GetPaper(ctx context.Context, id string) (paper.Paper, error) {
	raw, err := s.rdb.Get(ctx, paperKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return paper.Paper{}, library.ErrNotFound
	}
	if err != nil {
		return paper.Paper{}, fmt.Errorf("redisstore: get paper %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return paper.Paper{}, fmt.Errorf("redisstore: decode paper %s: %w", id, err)
	}
	return r.paper(), nil
}

// DeletePaper implements library.Store: the paper and its index entries go
// in one transaction.
func (s *Store) DeletePaper(ctx context.Context, id string) error {
	found := false
	txf := func(tx *redis.Tx) error {
		member, err := tx.HGet(ctx, keyAll, id).Result()
		if errors.Is(err, redis.Nil) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			removeIndexEntries(ctx, pipe, member)
			pipe.HDel(ctx, keyAll, id)
			pipe.Del(ctx, paperKey(id))
			return nil
		})
		return err
	}
	if err := s.watch(ctx, txf); err != nil {
		return fmt.Errorf("redisstore: delete paper %s: %w", id, err)
	}
	if !found {
		return library.ErrNotFound
	}
	return nil
}

// dayCursorPrefix versions the by_day cursor format.
const dayCursorPrefix = "d1:"

// ListPapersByDay implements library.Store. The cursor is the last member
// returned, so a walk never repeats a paper and never misses one whose
// upvotes did not change during the walk.
func (s *Store) ListPapersByDay(ctx context.Context, day string, limit int, cursor string) ([]paper.Paper, string, error) {
	start, stop := "-", "+"
	if day != "" {
		rank := dayRank(day)
		start, stop = "["+rank+":", "("+rank+";" // ';' follows ':'
	}
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		member, ok := strings.CutPrefix(string(b), dayCursorPrefix)
		m := dayMemberPattern.FindStringSubmatch(member)
		if err != nil || !ok || m == nil || !paper.ValidID(m[3]) || (day != "" && m[1] != dayRank(day)) {
			return nil, "", library.ErrBadCursor
		}
		start = "(" + member
	}
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: keyByDay, Start: start, Stop: stop, ByLex: true, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: list papers of day %q: %w", day, err)
	}
	next := ""
	if len(members) > limit {
		members = members[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(dayCursorPrefix + members[limit-1]))
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		sub := dayMemberPattern.FindStringSubmatch(m)
		if sub == nil {
			return nil, "", fmt.Errorf("redisstore: list papers: malformed index member %q", m)
		}
		ids = append(ids, sub[3])
	}
	papers, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: list papers of day %q: %w", day, err)
	}
	return papers, next, nil
}

// getMany reads papers by id in order, leaving out those deleted since
// their ids were read.
func (s *Store) getMany(ctx context.Context, ids []string) ([]paper.Paper, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = paperKey(id)
	}
	values, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	papers := make([]paper.Paper, 0, len(values))
	for i, v := range values {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", keys[i], err)
		}
		papers = append(papers, r.paper())
	}
	return papers, nil
}

// cursorPrefix versions the cursor format.
const cursorPrefix = "p1:"

func encodeCursor(member string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + member))
}

func decodeCursor(cursor string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", false
	}
	member, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return "", false
	}
	m := memberPattern.FindStringSubmatch(member)
	if m == nil || !paper.ValidID(m[1]) {
		return "", false
	}
	return member, true
}

// ListPapers implements digest.PaperStore. The cursor is the last member
// returned, so a walk never repeats a paper and never misses one whose
// upvotes did not change during the walk.
func (s *Store) ListPapers(ctx context.Context, limit int, cursor string) ([]paper.Paper, string, error) {
	start := "-"
	if cursor != "" {
		member, ok := decodeCursor(cursor)
		if !ok {
			return nil, "", digest.ErrBadCursor
		}
		start = "(" + member
	}
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: keyByUpvotes, Start: start, Stop: "+", ByLex: true, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: list papers: %w", err)
	}
	next := ""
	if len(members) > limit {
		members = members[:limit]
		next = encodeCursor(members[limit-1])
	}
	if len(members) == 0 {
		return nil, "", nil
	}
	ids := make([]string, len(members))
	for i, m := range members {
		sub := memberPattern.FindStringSubmatch(m)
		if sub == nil {
			return nil, "", fmt.Errorf("redisstore: list papers: malformed index member %q", m)
		}
		ids[i] = sub[1]
	}
	papers, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: list papers: %w", err)
	}
	return papers, next, nil
}
