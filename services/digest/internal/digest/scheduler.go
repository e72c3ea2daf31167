package digest

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

// CatchUpHorizon is how far back the scheduler looks for slots it missed
// (the service was down): a slot older than a day cannot be "later the
// same local day" for anyone, and each subscriber of a caught-up slot is
// only mailed if their local day has not ended (else counted as missed).
const CatchUpHorizon = 25 * time.Hour

// SchedulerStore keeps the scheduler's state, shared by all replicas.
type SchedulerStore interface {
	// AcquireLease takes the scheduler lease for owner, or renews it if
	// owner holds it, for ttl; it reports whether owner holds it now.
	AcquireLease(ctx context.Context, owner string, ttl time.Duration) (bool, error)
	// Cursor returns the last slot whose run finished (zero if none).
	Cursor(ctx context.Context) (time.Time, error)
	// SetCursor records slot as finished unless a later one is recorded.
	SetCursor(ctx context.Context, slot time.Time) error
}

// Scheduler runs every 15-minute slot's digests by itself, one replica at
// a time (a lease), catching up slots missed while the service was down.
// A slot whose run did not finish (a crash, a shutdown, an unreachable
// peer) is run again at the next tick: what was queued comes back as
// duplicates, so nobody gets a digest twice.
type Scheduler struct {
	svc   *Service
	store SchedulerStore
	owner string
	tick  time.Duration
	// attempts counts runs of a slot that left subscribers failed; after
	// MaxSlotAttempts the slot is given up (its failures stay on the runs).
	attempts map[time.Time]int
}

// MaxSlotAttempts is how often the scheduler runs a slot whose digests
// could not all be queued before it moves on.
const MaxSlotAttempts = 5

// NewScheduler returns a scheduler for svc that looks for due slots every
// tick.
func NewScheduler(svc *Service, store SchedulerStore, tick time.Duration) (*Scheduler, error) {
	if store == nil || tick <= 0 {
		return nil, fmt.Errorf("digest: scheduler needs a store and a positive tick")
	}
	owner, err := ulid.New(ulid.Now(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("digest: scheduler owner id: %w", err)
	}
	return &Scheduler{svc: svc, store: store, owner: owner.String(), tick: tick, attempts: map[time.Time]int{}}, nil
}

// Run schedules until ctx is done. Errors of one tick are logged and the
// next tick tries again; Run returns nil when ctx ends.
func (sc *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(sc.tick)
	defer t.Stop()
	for {
		if _, err := sc.Tick(ctx); err != nil && ctx.Err() == nil {
			sc.svc.cfg.Logger.ErrorContext(ctx, "digest scheduler tick failed; next tick tries again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick runs every slot due by now that has not run yet (oldest first),
// if this replica holds the lease, and returns the runs it made. It stops
// at the first slot whose run does not succeed.
func (sc *Scheduler) Tick(ctx context.Context) ([]Run, error) {
	held, err := sc.store.AcquireLease(ctx, sc.owner, 3*sc.tick+time.Minute)
	if err != nil {
		return nil, fmt.Errorf("digest: scheduler lease: %w", err)
	}
	if !held {
		return nil, nil
	}
	now := sc.svc.now().UTC()
	last := schedule.SlotStart(now)
	cursor, err := sc.store.Cursor(ctx)
	if err != nil {
		return nil, fmt.Errorf("digest: scheduler cursor: %w", err)
	}
	if cursor.IsZero() {
		// First start ever: begin with the current slot, and say so in the
		// store, so that a restart catches up from here.
		cursor = last.Add(-schedule.SlotLength)
		if err := sc.store.SetCursor(ctx, cursor); err != nil {
			return nil, fmt.Errorf("digest: scheduler cursor: %w", err)
		}
	}
	from := cursor.Add(schedule.SlotLength)
	if earliest := schedule.SlotStart(now.Add(-CatchUpHorizon)); from.Before(earliest) {
		from = earliest
	}
	var runs []Run
	for slot := from; !slot.After(last); slot = slot.Add(schedule.SlotLength) {
		run, err := sc.svc.runSlot(ctx, slot)
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
		if run.State != RunSucceeded {
			return runs, fmt.Errorf("digest: slot %s: run %s %s: %s", slot.Format(time.RFC3339), run.ID, run.State, run.Error)
		}
		if run.Counts.Failed > 0 {
			sc.attempts[slot]++
			if sc.attempts[slot] < MaxSlotAttempts {
				return runs, fmt.Errorf("digest: slot %s: run %s could not queue %d digests (attempt %d of %d): %s",
					slot.Format(time.RFC3339), run.ID, run.Counts.Failed, sc.attempts[slot], MaxSlotAttempts, run.Error)
			}
		}
		delete(sc.attempts, slot)
		if err := sc.store.SetCursor(ctx, slot); err != nil {
			return runs, fmt.Errorf("digest: scheduler cursor: %w", err)
		}
		// Renew the lease between slots of a long catch-up.
		if held, err := sc.store.AcquireLease(ctx, sc.owner, 3*sc.tick+time.Minute); err != nil || !held {
			return runs, err
		}
	}
	return runs, nil
}

// runSlot runs one slot in the caller's goroutine and returns how it
// ended.
func (s *Service) runSlot(ctx context.Context, slot time.Time) (Run, error) {
	now := s.now().UTC()
	id, err := ulid.New(ulid.Timestamp(now), rand.Reader)
	if err != nil {
		return Run{}, fmt.Errorf("digest: new run id: %w", err)
	}
	run := Run{ID: id.String(), Slot: slot, State: RunRunning, CreateTime: now, HeartbeatTime: now, Scheduled: true}
	if err := s.cfg.Runs.CreateRun(ctx, run); err != nil {
		return Run{}, fmt.Errorf("digest: create run: %w", err)
	}
	s.execute(ctx, ctx, run)
	done, err := s.cfg.Runs.GetRun(context.WithoutCancel(ctx), run.ID)
	if err != nil {
		return Run{}, fmt.Errorf("digest: read run %s: %w", run.ID, err)
	}
	return done, nil
}
