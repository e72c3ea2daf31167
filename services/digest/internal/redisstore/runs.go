package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/redisclient"

	"github.com/oklog/ulid/v2"
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
	fSlot       = "slot"
	fMissed     = "missed"
	fContents   = "contents"
	fHeartbeat  = "heartbeat_time"
)

// keyRuns indexes runs: every score 0, members the run ids (ULIDs), so
// lexical order is creation order.
const keyRuns = "dig:runs"

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
	// The index is written first and on its own (it is in another hash
	// slot): an index entry whose run is missing is skipped by ListRuns.
	var oldest ulid.ULID
	if err := oldest.SetTime(ulid.Timestamp(run.CreateTime.Add(-digest.RunTTL))); err != nil {
		return fmt.Errorf("redisstore: create run %s: %w", run.ID, err)
	}
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.ZAdd(ctx, keyRuns, redis.Z{Member: run.ID})
		pipe.ZRemRangeByLex(ctx, keyRuns, "-", "("+oldest.String())
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: create run %s: index: %w", run.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
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
			fCreateTime, redisclient.FormatTime(run.CreateTime),
			fFinishTime, redisclient.FormatTime(run.FinishTime),
			fError, run.Error,
			fSlot, redisclient.FormatTime(run.Slot),
			fMissed, run.Counts.Missed,
			fContents, run.Counts.Contents,
			fHeartbeat, redisclient.FormatTime(run.HeartbeatTime),
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
		fMissed: &run.Counts.Missed, fContents: &run.Counts.Contents,
	} {
		if (field == fMissed || field == fContents) && h[field] == "" {
			continue // runs recorded before these counts existed
		}
		n, err := strconv.ParseInt(h[field], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q", field, h[field]))
		}
		*dst = n
	}
	if ids := h[fPaperIDs]; ids != "" {
		run.PaperIDs = strings.Split(ids, ",")
	}
	if run.CreateTime, err = redisclient.ParseTime(h[fCreateTime]); err != nil {
		errs = append(errs, err)
	}
	if run.FinishTime, err = redisclient.ParseTime(h[fFinishTime]); err != nil {
		errs = append(errs, err)
	}
	if run.Slot, err = redisclient.ParseTime(h[fSlot]); err != nil {
		errs = append(errs, err)
	}
	if run.HeartbeatTime, err = redisclient.ParseTime(h[fHeartbeat]); err != nil {
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
		fMissed, d.Missed, fContents, d.Contents,
	})
}

// FinishRun implements digest.RunStore.
func (s *Store) FinishRun(ctx context.Context, id string, state digest.RunState, errText string, at time.Time) error {
	return s.update(ctx, id, []any{fState, state.String(), fError, errText, fFinishTime, redisclient.FormatTime(at)}, nil)
}

// Heartbeat implements digest.RunStore.
func (s *Store) Heartbeat(ctx context.Context, id string, at time.Time) error {
	return s.update(ctx, id, []any{fHeartbeat, redisclient.FormatTime(at)}, nil)
}

// FailIfStale implements digest.RunStore. The check and the change are one
// script, so a heartbeat that arrives meanwhile is never overwritten.
func (s *Store) FailIfStale(ctx context.Context, id string, before time.Time, errText string, at time.Time) (bool, error) {
	run, err := s.GetRun(ctx, id)
	if err != nil {
		return false, err
	}
	hb := run.HeartbeatTime
	if hb.IsZero() {
		hb = run.CreateTime
	}
	n, err := failIfStaleAt.Run(ctx, s.rdb, []string{runKey(id)},
		redisclient.FormatTime(hb), hb.UnixMilli(), before.UnixMilli(), errText, redisclient.FormatTime(at)).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: fail stale run %s: %w", id, err)
	}
	return n == 1, nil
}

// failIfStaleAt is failIfStale guarded by the heartbeat the caller read
// (ARGV[1]): if it changed since, the run is alive and stays RUNNING.
var failIfStaleAt = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' then
  return 0
end
local hb = redis.call('HGET', KEYS[1], 'heartbeat_time')
if hb ~= false and hb ~= '' and hb ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'FAILED', 'error', ARGV[4], 'finish_time', ARGV[5])
return 1
`)

// ListRuns implements digest.RunStore.
func (s *Store) ListRuns(ctx context.Context, limit int, cursor string) ([]digest.Run, string, error) {
	start := "+"
	if cursor != "" {
		id, err := ulid.ParseStrict(cursor)
		if err != nil {
			return nil, "", digest.ErrBadCursor
		}
		start = "(" + id.String()
	}
	var runs []digest.Run
	for len(runs) <= limit {
		ids, err := s.rdb.ZRevRangeByLex(ctx, keyRuns, &redis.ZRangeBy{Max: start, Min: "-", Count: int64(limit + 1 - len(runs))}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("redisstore: list runs: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			run, err := s.GetRun(ctx, id)
			if errors.Is(err, digest.ErrNotFound) {
				continue // expired; CreateRun trims the index
			}
			if err != nil {
				return nil, "", err
			}
			runs = append(runs, run)
		}
		start = "(" + ids[len(ids)-1]
	}
	if len(runs) > limit {
		return runs[:limit], runs[limit-1].ID, nil
	}
	return runs, "", nil
}

func parseState(s string) digest.RunState {
	for _, st := range []digest.RunState{digest.RunRunning, digest.RunSucceeded, digest.RunFailed} {
		if st.String() == s {
			return st
		}
	}
	return 0
}
