package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/archive"
)

// Editions of the public trending digest (package archive); both keys share
// the hash tag {editions}, so the MULTI that writes them works on Redis
// Cluster:
//
//	dig:{editions}:edition:<id>    STRING  the edition as JSON
//	dig:{editions}:index           ZSET    edition id, score = last update
//	                                       (unix milliseconds)
//
// Editions are a few hundred bytes per paper and two per day: no TTL.
const (
	editionPrefix   = "dig:{editions}:edition:"
	keyEditionIndex = "dig:{editions}:index"
)

// EditionStore is the Redis implementation of archive.Store.
type EditionStore struct {
	rdb redis.UniversalClient
}

var _ archive.Store = (*EditionStore)(nil)

// NewEditionStore returns an EditionStore on rdb.
func NewEditionStore(rdb redis.UniversalClient) *EditionStore { return &EditionStore{rdb: rdb} }

// editionRecord is an edition as stored; its JSON names are the storage
// format.
type editionRecord struct {
	ID      string       `json:"id"`
	Weekly  bool         `json:"weekly,omitempty"`
	Updated time.Time    `json:"updated"`
	Cards   []cardRecord `json:"cards"`
}

type cardRecord struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Summary     string   `json:"summary,omitempty"`
	Authors     []string `json:"authors,omitempty"`
	Upvotes     int      `json:"upvotes,omitempty"`
	Comments    int      `json:"comments,omitempty"`
	GitHubStars int      `json:"github_stars,omitempty"`
	GitHubRepo  string   `json:"github_repo,omitempty"`
	ProjectPage string   `json:"project_page,omitempty"`
	URL         string   `json:"url,omitempty"`
	Why         string   `json:"why,omitempty"`
}

// PutEdition implements archive.Store.
func (s *EditionStore) PutEdition(ctx context.Context, e archive.Edition) error {
	rec := editionRecord{ID: e.ID, Weekly: e.Weekly, Updated: e.Updated.UTC(), Cards: make([]cardRecord, len(e.Cards))}
	for i, c := range e.Cards {
		rec.Cards[i] = cardRecord(c)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("redisstore: put edition %s: %w", e.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, editionPrefix+e.ID, raw, 0)
		p.ZAdd(ctx, keyEditionIndex, redis.Z{Score: float64(e.Updated.UnixMilli()), Member: e.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: put edition %s: %w", e.ID, err)
	}
	return nil
}

// GetEdition implements archive.Store.
func (s *EditionStore) GetEdition(ctx context.Context, id string) (archive.Edition, error) {
	raw, err := s.rdb.Get(ctx, editionPrefix+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return archive.Edition{}, archive.ErrNotFound
	}
	if err != nil {
		return archive.Edition{}, fmt.Errorf("redisstore: get edition %s: %w", id, err)
	}
	var rec editionRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return archive.Edition{}, fmt.Errorf("redisstore: decode edition %s: %w", id, err)
	}
	e := archive.Edition{ID: rec.ID, Weekly: rec.Weekly, Updated: rec.Updated, Cards: make([]archive.Card, len(rec.Cards))}
	for i, c := range rec.Cards {
		e.Cards[i] = archive.Card(c)
	}
	return e, nil
}

// ListEditions implements archive.Store.
func (s *EditionStore) ListEditions(ctx context.Context, limit int) ([]archive.Ref, error) {
	if limit <= 0 {
		return nil, nil
	}
	zs, err := s.rdb.ZRevRangeWithScores(ctx, keyEditionIndex, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list editions: %w", err)
	}
	refs := make([]archive.Ref, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		weekly, err := archive.ParseID(id)
		if err != nil {
			continue // not written by PutEdition
		}
		refs = append(refs, archive.Ref{ID: id, Weekly: weekly, Updated: time.UnixMilli(int64(z.Score)).UTC()})
	}
	return refs, nil
}
