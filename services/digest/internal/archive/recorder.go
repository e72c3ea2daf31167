package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of a Recorder.
const (
	// DefaultInterval is how often the current editions are recorded.
	DefaultInterval = 15 * time.Minute
	// DefaultPapers is how many papers an archived edition holds.
	DefaultPapers = 20
)

// Recorder records the current daily and weekly editions.
type Recorder struct {
	// Trending and Store are required.
	Trending Trending
	Store    Store
	// WeeklyWindow is the window of the weekly list (the digest's
	// DIGEST_WEEKLY_WINDOW); the daily list uses the service's default.
	WeeklyWindow time.Duration
	// Papers is how many papers an edition holds; 0 means DefaultPapers.
	Papers int
	// Interval is the time between recordings; 0 means DefaultInterval.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger reports failed recordings (the next one retries).
	Logger *slog.Logger
}

// Record stores the current daily and weekly editions. An empty list (no
// papers in the window) records nothing: an edition always has papers.
func (r *Recorder) Record(ctx context.Context) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	n := r.Papers
	if n == 0 {
		n = DefaultPapers
	}
	at := now().UTC()
	var errs []error
	for _, e := range []struct {
		id     string
		weekly bool
		window time.Duration
	}{{DailyID(at), false, 0}, {WeeklyID(at), true, r.WeeklyWindow}} {
		picks, _, err := r.Trending.Trending(ctx, e.window, n, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("archive: record %s: %w", e.id, err))
			continue
		}
		if len(picks) == 0 {
			continue
		}
		if err := r.Store.PutEdition(ctx, Edition{ID: e.id, Weekly: e.weekly, Updated: at, Cards: Cards(picks)}); err != nil {
			errs = append(errs, fmt.Errorf("archive: record %s: %w", e.id, err))
		}
	}
	return errors.Join(errs...)
}

// Run records at once and then every Interval until ctx is done. A failed
// recording is logged and retried at the next tick; Run returns nil when
// ctx is done.
func (r *Recorder) Run(ctx context.Context) error {
	every := r.Interval
	if every == 0 {
		every = DefaultInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := r.Record(ctx); err != nil && ctx.Err() == nil && r.Logger != nil {
			r.Logger.WarnContext(ctx, "archive: recording the current editions failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
