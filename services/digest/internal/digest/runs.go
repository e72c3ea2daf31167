package digest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

var editionPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// RunRequest says what a run covers: one edition date for every
// subscriber the subscriber service says is due now, or one 15-minute
// slot (what the scheduler runs), where each due subscriber gets the
// edition of their own local date or ISO week.
type RunRequest struct {
	// Edition is "YYYY-MM-DD"; empty (and no Slot) means today in UTC.
	Edition string
	// Slot is the start of a slot (a UTC quarter hour); zero for an
	// edition run.
	Slot time.Time
	// DryRun renders and counts but records and queues nothing.
	DryRun bool
}

// checkRun validates req against the clock: a real run may not be for a
// date more than one day after today (UTC) — a typo like 9999-12-31 would
// otherwise burn that edition's send-once keys — a dry run may look
// further.
func (s *Service) checkRun(req RunRequest) (RunRequest, error) {
	now := s.now().UTC()
	limit := now.Truncate(24*time.Hour).AddDate(0, 0, 2) // start of the day after tomorrow
	var verr validation.Errors
	switch {
	case req.Edition != "" && !req.Slot.IsZero():
		verr.Add("slot", "set edition or slot, not both")
	case !req.Slot.IsZero():
		slot := req.Slot.UTC()
		switch {
		case slot.Year() < 2000 || slot.Year() > 9999:
			verr.Add("slot", "is not a time from 2000 on")
		case !slot.Equal(schedule.SlotStart(slot)):
			verr.Add("slot", "must be the start of a 15-minute slot (a quarter hour, UTC)")
		case !req.DryRun && !slot.Before(limit):
			verr.Add("slot", "is more than one day after today (UTC); a dry run may look further")
		}
		req.Slot = slot
	case req.Edition == "":
		req.Edition = now.Format(time.DateOnly)
	case !editionPattern.MatchString(req.Edition):
		verr.Add("edition", "must be a date written YYYY-MM-DD, e.g. 2026-06-12")
	default:
		t, err := time.Parse(time.DateOnly, req.Edition)
		switch {
		case err != nil || t.Year() < 2000:
			verr.Add("edition", "is not a real calendar date (from 2000 on)")
		case !req.DryRun && !t.Before(limit):
			verr.Add("edition", "is more than one day after today (UTC); a dry run may look further")
		}
	}
	return req, verr.Err()
}

// RunDigest starts a run and returns it at once, RUNNING; the work goes on
// in the background. Running the same edition or slot again is safe and is
// how a FAILED run is resumed: what was queued comes back as duplicates.
func (s *Service) RunDigest(ctx context.Context, req RunRequest) (Run, error) {
	req, err := s.checkRun(req)
	if err != nil {
		return Run{}, err
	}
	now := s.now().UTC()
	id, err := ulid.New(ulid.Timestamp(now), rand.Reader)
	if err != nil {
		return Run{}, fmt.Errorf("digest: new run id: %w", err)
	}
	run := Run{ID: id.String(), Edition: req.Edition, Slot: req.Slot, State: RunRunning, DryRun: req.DryRun,
		CreateTime: now, HeartbeatTime: now}

	err = s.background(func() error {
		if err := s.cfg.Runs.CreateRun(ctx, run); err != nil {
			return fmt.Errorf("digest: create run: %w", err)
		}
		return nil
	}, func(runCtx context.Context) { s.execute(runCtx, ctx, run) })
	if err != nil {
		return Run{}, err
	}
	s.cfg.Logger.InfoContext(ctx, "digest run started", "run_id", run.ID, "edition", run.Edition, "slot", run.Slot, "dry_run", run.DryRun)
	return run, nil
}

// staleError is the error of a run whose process stopped.
const staleError = "the process running it stopped; run it again (nothing is sent twice)"

// GetRun returns a run by id. A RUNNING run whose heartbeat stopped (its
// process died) is marked FAILED first.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return Run{}, validation.Field("run_id", "must be a run id (a ULID) from RunDigest")
	}
	run, err := s.cfg.Runs.GetRun(ctx, parsed.String())
	if err != nil {
		return Run{}, fmt.Errorf("digest: get run %s: %w", parsed, err)
	}
	return s.checkStale(ctx, run)
}

// ListRuns returns one page of runs, newest first.
func (s *Service) ListRuns(ctx context.Context, pageSize int, pageToken string) ([]Run, string, error) {
	switch {
	case pageSize < 0:
		return nil, "", validation.Field("page_size", "must not be negative")
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	runs, next, err := s.cfg.Runs.ListRuns(ctx, pageSize, pageToken)
	if errors.Is(err, ErrBadCursor) {
		return nil, "", validation.Field("page_token", "is not a token from a previous response")
	}
	if err != nil {
		return nil, "", fmt.Errorf("digest: list runs: %w", err)
	}
	for i := range runs {
		if runs[i], err = s.checkStale(ctx, runs[i]); err != nil {
			return nil, "", err
		}
	}
	return runs, next, nil
}

func (s *Service) checkStale(ctx context.Context, run Run) (Run, error) {
	if run.State != RunRunning {
		return run, nil
	}
	hb := run.HeartbeatTime
	if hb.IsZero() {
		hb = run.CreateTime
	}
	now := s.now().UTC()
	before := now.Add(-StaleAfter)
	if !hb.Before(before) {
		return run, nil
	}
	failed, err := s.cfg.Runs.FailIfStale(ctx, run.ID, before, staleError, now)
	if err != nil {
		return Run{}, fmt.Errorf("digest: mark stale run %s failed: %w", run.ID, err)
	}
	if failed {
		run.State, run.Error, run.FinishTime = RunFailed, staleError, now
		s.cfg.Logger.WarnContext(ctx, "digest run marked failed: its process stopped", "run_id", run.ID)
	}
	return run, nil
}

// heartbeat records every HeartbeatInterval that the run is alive, until
// the returned stop is called.
func (s *Service) heartbeat(ctx context.Context, id string) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.cfg.Runs.Heartbeat(ctx, id, s.now().UTC()); err != nil && ctx.Err() == nil {
					s.cfg.Logger.WarnContext(ctx, "digest run heartbeat failed", "run_id", id, "err", err)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// execute does a run's work and records how it ended. origin is the
// context of the call that started the run (for tracing only).
func (s *Service) execute(ctx, origin context.Context, run Run) {
	ctx, endTrace := s.tracer().StartRun(ctx, origin, run)
	s.cfg.Metrics.RunStarted()
	stop := s.heartbeat(ctx, run.ID)
	counts, warning, err := s.work(ctx, run)
	stop()

	state, errText := RunSucceeded, warning
	interrupted := err != nil && ctx.Err() != nil
	switch {
	case interrupted:
		state, errText = RunFailed, interruptedError
	case err != nil:
		state, errText = RunFailed, err.Error()
	}
	errText = shorten(errText, maxErrorText)
	defer endTrace(RunEnd{State: state, Counts: counts, Error: errText})
	s.cfg.Metrics.RunFinished(run, state, counts)
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	log := s.cfg.Logger.With("run_id", run.ID, "edition", run.Edition, "slot", run.Slot, "dry_run", run.DryRun,
		"state", state.String(), "due", counts.Due, "queued", counts.Queued, "duplicate", counts.Duplicate,
		"skipped", counts.Skipped, "failed", counts.Failed, "missed", counts.Missed, "contents", counts.Contents)
	if ferr := s.cfg.Runs.FinishRun(finishCtx, run.ID, state, errText, s.now().UTC()); ferr != nil {
		log.ErrorContext(finishCtx, "digest run finished but its end could not be recorded", "err", ferr)
		return
	}
	switch {
	case interrupted:
		log.WarnContext(finishCtx, "digest run interrupted by shutdown")
	case err != nil:
		log.ErrorContext(finishCtx, "digest run failed", "err", err)
	case counts.Failed > 0:
		log.WarnContext(finishCtx, "digest run finished with failures", "first_error", warning)
	default:
		log.InfoContext(finishCtx, "digest run finished")
	}
}

// runError is a run failure whose text is written for operators; cause is
// for the log.
type runError struct {
	text  string
	cause error
}

func (e *runError) Error() string { return e.text }
func (e *runError) Unwrap() error { return e.cause }

// LogValue puts the cause into the log line.
func (e *runError) LogValue() slog.Value {
	if e.cause == nil {
		return slog.StringValue(e.text)
	}
	return slog.StringValue(e.text + ": " + e.cause.Error())
}

// addCounts records a page's counts, also after ctx is cancelled.
func (s *Service) addCounts(ctx context.Context, id string, c Counts) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.cfg.Runs.AddRunCounts(ctx, id, c)
}

// tally adds one Enqueue call's outcome to c.
func tally(c Counts, warning string, n int, results []EnqueueResult, err error) (Counts, string) {
	if err == nil && len(results) != n {
		err = fmt.Errorf("sender answered %d results for %d messages", len(results), n)
	}
	if err != nil {
		c.Failed += int64(n)
		if warning == "" {
			warning = fmt.Sprintf("could not queue digests: %v", err)
		}
		return c, warning
	}
	for _, r := range results {
		if r.Duplicate {
			c.Duplicate++
		} else {
			c.Queued++
		}
	}
	return c, warning
}

// shorten cuts s to at most n bytes (plus an ellipsis) on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
