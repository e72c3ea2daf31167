package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
)

func runKey(id string) string { return "dig:run:" + id }

// Hash fields of a run.
const (
	fEdition    = "edition"
	fState      = "state"
	fDryRun     = "dry_run"
	fDue        = "due"
	fQueued     = "queued"
	fDuplicate  = "duplicate"
	fSkipped    = "skipped"
	fFailed     = "failed"
	fPaperIDs   = "paper_ids"
	fCreateTime = "create_time"
	fFinishTime = "finish_time"
	fError      = "error"
)

// updateIfExists applies HSET (ARGV pairs after the first ARGV, which is
// the number of HSET arguments) and HINCRBY (the remaining pairs) to a run
// only if it still exists, so a late update can never resurrect an expired
// run as a partial hash without a TTL.
var updateIfExists = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local nset = tonumber(ARGV[1])
if nset > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + nset))
end
for i = 2 + nset, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
`)

func (s *Store) update(ctx context.Context, id string, set []any, incr []any) error {
	args := append([]any{len(set)}, set...)
	args = append(args, incr...)
	n, err := updateIfExists.Run(ctx, s.rdb, []string{runKey(id)}, args...).Int()
	if err != nil {
		return fmt.Errorf("redisstore: update run %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: update run %s: %w", id, digest.ErrNotFound)
	}
	return nil
}

// CreateRun implements digest.RunStore.
func (s *Store) CreateRun(ctx context.Context, run digest.Run) error {
	key := runKey(run.ID)
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, key,
			fEdition, run.Edition,
			fState, run.State.String(),
			fDryRun, strconv.FormatBool(run.DryRun),
			fDue, run.Counts.Due,
			fQueued, run.Counts.Queued,
			fDuplicate, run.Counts.Duplicate,
			fSkipped, run.Counts.Skipped,
			fFailed, run.Counts.Failed,
			fPaperIDs, strings.Join(run.PaperIDs, ","),
			fCreateTime, formatTime(run.CreateTime),
			fFinishTime, formatTime(run.FinishTime),
			fError, run.Error,
		)
		pipe.Expire(ctx, key, digest.RunTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: create run %s: %w", run.ID, err)
	}
	return nil
}

// GetRun implements digest.RunStore.
func (s *Store) GetRun(ctx context.Context, id string) (digest.Run, error) {
	h, err := s.rdb.HGetAll(ctx, runKey(id)).Result()
	if err != nil {
		return digest.Run{}, fmt.Errorf("redisstore: get run %s: %w", id, err)
	}
	if len(h) == 0 {
		return digest.Run{}, fmt.Errorf("redisstore: get run %s: %w", id, digest.ErrNotFound)
	}
	run := digest.Run{ID: id, Edition: h[fEdition], Error: h[fError]}
	var errs []error
	run.State = parseState(h[fState])
	if run.State == 0 {
		errs = append(errs, fmt.Errorf("state %q", h[fState]))
	}
	run.DryRun = h[fDryRun] == "true"
	for field, dst := range map[string]*int64{
		fDue: &run.Counts.Due, fQueued: &run.Counts.Queued, fDuplicate: &run.Counts.Duplicate,
		fSkipped: &run.Counts.Skipped, fFailed: &run.Counts.Failed,
	} {
		n, err := strconv.ParseInt(h[field], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q", field, h[field]))
		}
		*dst = n
	}
	if ids := h[fPaperIDs]; ids != "" {
		run.PaperIDs = strings.Split(ids, ",")
	}
	if run.CreateTime, err = parseTime(h[fCreateTime]); err != nil {
		errs = append(errs, err)
	}
	if run.FinishTime, err = parseTime(h[fFinishTime]); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return digest.Run{}, fmt.Errorf("redisstore: get run %s: corrupt record: %w", id, err)
	}
	return run, nil
}

// SetRunPapers implements digest.RunStore.
func (s *Store) SetRunPapers(ctx context.Context, id string, paperIDs []string) error {
	return s.update(ctx, id, []any{fPaperIDs, strings.Join(paperIDs, ",")}, nil)
}

// AddRunCounts implements digest.RunStore.
func (s *Store) AddRunCounts(ctx context.Context, id string, d digest.Counts) error {
	return s.update(ctx, id, nil, []any{
		fDue, d.Due, fQueued, d.Queued, fDuplicate, d.Duplicate, fSkipped, d.Skipped, fFailed, d.Failed,
	})
}

// FinishRun implements digest.RunStore.
func (s *Store) FinishRun(ctx context.Context, id string, state digest.RunState, errText string, at time.Time) error {
	return s.update(ctx, id, []any{fState, state.String(), fError, errText, fFinishTime, formatTime(at)}, nil)
}

func parseState(s string) digest.RunState {
	for _, st := range []digest.RunState{digest.RunRunning, digest.RunSucceeded, digest.RunFailed} {
		if st.String() == s {
			return st
		}
	}
	return 0
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q", s)
	}
	return t, nil
}
