// Package redisstore keeps the digest service's papers and runs in Redis,
// under keys prefixed "dig:".
//
// Papers (all three keys share the hash tag {papers}, so the import's
// script, which writes all of them atomically, works on Redis Cluster too;
// papers are few and small, one slot holds years of them):
//
//	dig:{papers}:paper:<arXiv id>  STRING  the paper as JSON
//	dig:{papers}:all               HASH    arXiv id → its member in by_upvotes
//	dig:{papers}:by_upvotes        ZSET    every score 0; member
//	                                       "<2147483647-upvotes, 10 digits>:<id>",
//	                                       so lexical order is most upvoted
//	                                       first, ties by id, and a member is
//	                                       an exact pagination cursor
//
// Runs (one key each, so nothing spans slots):
//
//	dig:run:<ULID>                 HASH    edition, state, dry_run, counts,
//	                                       paper_ids, create_time,
//	                                       finish_time, error; TTL 90 days
package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

const (
	keyAll       = "dig:{papers}:all"
	keyByUpvotes = "dig:{papers}:by_upvotes"
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

// upsertPapers stores papers and keeps both indexes right in one atomic
// step: for each (id, member, json) triple in ARGV it replaces the paper's
// old rank member, records the new one and stores the paper; it returns how
// many ids were new. KEYS are all, by_upvotes, then each paper's key. A
// script, unlike WATCH/MULTI, cannot lose a race to a concurrent import and
// need a retry. (No "#!lua" shebang: it would make Redis 7 refuse the script
// up front when out of memory, but the embedded Redis of the dev mode cannot
// parse it, and paperroute runs Redis with noeviction and no write can be
// half-applied by eviction.)
var upsertPapers = redis.NewScript(`
local created = 0
for i = 1, #ARGV, 3 do
  local id, member, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local prev = redis.call('HGET', KEYS[1], id)
  if not prev then
    created = created + 1
  elseif prev ~= member then
    redis.call('ZREM', KEYS[2], prev)
  end
  redis.call('ZADD', KEYS[2], 0, member)
  redis.call('HSET', KEYS[1], id, member)
  redis.call('SET', KEYS[2 + (i + 2) / 3], value)
end
return created
`)

// UpsertPapers implements digest.PaperStore: the papers and their index
// entries are written by one script, so either all of them are stored or
// none.
func (s *Store) UpsertPapers(ctx context.Context, papers []paper.Paper) (int, error) {
	if len(papers) == 0 {
		return 0, nil
	}
	keys := make([]string, 0, 2+len(papers))
	keys = append(keys, keyAll, keyByUpvotes)
	args := make([]any, 0, 3*len(papers))
	for _, p := range papers {
		b, err := json.Marshal(toRecord(p))
		if err != nil {
			return 0, fmt.Errorf("redisstore: encode paper %s: %w", p.ID, err)
		}
		keys = append(keys, paperKey(p.ID))
		args = append(args, p.ID, rankMember(p), b)
	}
	created, err := upsertPapers.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("redisstore: upsert %d papers: %w", len(papers), err)
	}
	return created, nil
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
	keys := make([]string, len(members))
	for i, m := range members {
		sub := memberPattern.FindStringSubmatch(m)
		if sub == nil {
			return nil, "", fmt.Errorf("redisstore: list papers: malformed index member %q", m)
		}
		keys[i] = paperKey(sub[1])
	}
	values, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: list papers: %w", err)
	}
	papers := make([]paper.Paper, 0, len(values))
	for i, v := range values {
		raw, ok := v.(string)
		if !ok {
			continue // removed between the two reads
		}
		var r record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, "", fmt.Errorf("redisstore: decode %s: %w", keys[i], err)
		}
		papers = append(papers, r.paper())
	}
	return papers, next, nil
}
