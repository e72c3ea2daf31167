package digest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/render"
)

// Defaults and bounds of the service's knobs.
const (
	// DuePageSize is how many due subscribers one page (and so one Enqueue
	// batch) holds.
	DuePageSize = 500
	// RunTTL is how long a run's record is kept.
	RunTTL = 90 * 24 * time.Hour
	// interruptedError is a run's error when shutdown stopped it.
	interruptedError = "interrupted by shutdown; run it again"
	// finishTimeout bounds the write that records a run's end.
	finishTimeout = 5 * time.Second
	// maxErrorText bounds the error text kept on a run.
	maxErrorText = 300
)

// Config is what a Service needs.
type Config struct {
	Papers      PaperStore
	Runs        RunStore
	Subscribers Subscribers
	Sender      Sender
	Renderer    *render.Renderer
	// Logger receives one line per run start and end. Required.
	Logger *slog.Logger
	// PapersPerEdition is how many papers an edition carries (1..50).
	PapersPerEdition int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service imports papers and runs digests. Runs work in the background,
// tied to the Service's lifetime rather than to the request that started
// them; Shutdown stops them.
type Service struct {
	cfg Config
	now func() time.Time

	// runCtx is cancelled by Shutdown; every run works under it.
	runCtx     context.Context
	cancelRuns context.CancelFunc
	mu         sync.Mutex // guards closed and wg.Add
	closed     bool
	wg         sync.WaitGroup
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Papers == nil || cfg.Runs == nil || cfg.Subscribers == nil || cfg.Sender == nil || cfg.Renderer == nil || cfg.Logger == nil:
		return nil, errors.New("digest: Papers, Runs, Subscribers, Sender, Renderer and Logger are required")
	case cfg.PapersPerEdition < 1 || cfg.PapersPerEdition > 50:
		return nil, fmt.Errorf("digest: PapersPerEdition %d is outside 1..50", cfg.PapersPerEdition)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, now: now, runCtx: ctx, cancelRuns: cancel}, nil
}

var editionPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// parseEdition checks an edition date; empty means today (UTC).
func (s *Service) parseEdition(edition string) (string, error) {
	if edition == "" {
		return s.now().UTC().Format(time.DateOnly), nil
	}
	if !editionPattern.MatchString(edition) {
		return "", validation.Field("edition", "must be a date written YYYY-MM-DD, e.g. 2026-06-12")
	}
	t, err := time.Parse(time.DateOnly, edition)
	if err != nil || t.Year() < 2000 {
		return "", validation.Field("edition", "is not a real calendar date (from 2000 on)")
	}
	return edition, nil
}

// RunDigest starts a run for edition ("YYYY-MM-DD", empty for today UTC)
// and returns it at once, RUNNING; the work goes on in the background. A
// dry run counts but queues nothing.
func (s *Service) RunDigest(ctx context.Context, edition string, dryRun bool) (Run, error) {
	edition, err := s.parseEdition(edition)
	if err != nil {
		return Run{}, err
	}
	now := s.now().UTC()
	id, err := ulid.New(ulid.Timestamp(now), rand.Reader)
	if err != nil {
		return Run{}, fmt.Errorf("digest: new run id: %w", err)
	}
	run := Run{ID: id.String(), Edition: edition, State: RunRunning, DryRun: dryRun, CreateTime: now}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Run{}, ErrShuttingDown
	}
	s.wg.Add(1)
	s.mu.Unlock()

	if err := s.cfg.Runs.CreateRun(ctx, run); err != nil {
		s.wg.Done()
		return Run{}, fmt.Errorf("digest: create run: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "digest run started", "run_id", run.ID, "edition", edition, "dry_run", dryRun)
	go s.execute(run)
	return run, nil
}

// GetRun returns a run by id.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return Run{}, validation.Field("run_id", "must be a run id (a ULID) from RunDigest")
	}
	run, err := s.cfg.Runs.GetRun(ctx, parsed.String())
	if err != nil {
		return Run{}, fmt.Errorf("digest: get run %s: %w", parsed, err)
	}
	return run, nil
}

// Shutdown stops new runs, interrupts the ones in flight (they are marked
// FAILED with "interrupted by shutdown; run it again": running an edition
// again is safe) and waits for them until ctx is done.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancelRuns()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("digest: shutdown: runs still finishing: %w", ctx.Err())
	}
}

// execute does a run's work and records how it ended.
func (s *Service) execute(run Run) {
	defer s.wg.Done()
	ctx := s.runCtx
	counts, warning, err := s.work(ctx, run)

	state, errText := RunSucceeded, warning
	interrupted := err != nil && ctx.Err() != nil
	switch {
	case interrupted:
		state, errText = RunFailed, interruptedError
	case err != nil:
		state, errText = RunFailed, err.Error()
	}
	errText = shorten(errText, maxErrorText)
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	log := s.cfg.Logger.With("run_id", run.ID, "edition", run.Edition, "dry_run", run.DryRun,
		"state", state.String(), "due", counts.Due, "queued", counts.Queued, "duplicate", counts.Duplicate,
		"skipped", counts.Skipped, "failed", counts.Failed)
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

// work picks the papers, renders once, stores the content once and walks
// the due subscribers page by page. It returns the counts so far, a warning
// for the first enqueue failure, and an error if the run stopped early.
func (s *Service) work(ctx context.Context, run Run) (Counts, string, error) {
	var total Counts
	papers, _, err := s.cfg.Papers.ListPapers(ctx, s.cfg.PapersPerEdition, "")
	if err != nil {
		return total, "", &runError{"could not read the papers", err}
	}
	var (
		msg       render.Message
		contentID string
	)
	if len(papers) > 0 {
		date, _ := time.Parse(time.DateOnly, run.Edition)
		msg, err = s.cfg.Renderer.Render(render.Edition{Date: date, Papers: papers})
		if err != nil {
			return total, "", &runError{"could not render the edition", err}
		}
		papers = papers[:msg.Papers]
	}
	ids := make([]string, len(papers))
	for i, p := range papers {
		ids[i] = p.ID
	}
	if err := s.cfg.Runs.SetRunPapers(ctx, run.ID, ids); err != nil {
		return total, "", &runError{"could not record the edition's papers", err}
	}
	if len(papers) > 0 && !run.DryRun {
		contentID, err = s.cfg.Sender.PutContent(ctx, Content{Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text})
		if err != nil {
			return total, "", &runError{"could not store the edition's content in the sender", err}
		}
	}

	var warning string
	dueTime := run.CreateTime
	token := ""
	for {
		subs, next, err := s.cfg.Subscribers.ListDue(ctx, dueTime, DuePageSize, token)
		if err != nil {
			return total, warning, &runError{"could not list the due subscribers", err}
		}
		page := Counts{Due: int64(len(subs))}
		switch {
		case len(papers) == 0:
			page.Skipped = page.Due
		case run.DryRun:
		default:
			c, w := s.enqueue(ctx, run, contentID, subs)
			page = page.Add(c)
			if warning == "" {
				warning = w
			}
		}
		// Record what this page did even if shutdown interrupted it.
		if err := s.addCounts(ctx, run.ID, page); err != nil {
			return total, warning, &runError{"could not record the run's progress", err}
		}
		total = total.Add(page)
		if ctx.Err() != nil {
			return total, warning, ctx.Err()
		}
		if next == "" {
			return total, warning, nil
		}
		if next == token {
			return total, warning, &runError{"the subscriber service returned the same page token twice", nil}
		}
		token = next
	}
}

// addCounts records a page's counts, also after ctx is cancelled.
func (s *Service) addCounts(ctx context.Context, id string, c Counts) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.cfg.Runs.AddRunCounts(ctx, id, c)
}

// enqueue queues one page's digests in one batch. If the sender refuses
// the batch because one message is invalid, each message is queued alone,
// so one bad address does not hold back the rest of the page.
func (s *Service) enqueue(ctx context.Context, run Run, contentID string, subs []DueSubscriber) (Counts, string) {
	var c Counts
	var warning string
	msgs := make([]Message, 0, len(subs))
	for _, sub := range subs {
		if sub.ID == "" || sub.Email == "" || sub.UnsubscribeURL == "" {
			c.Failed++
			if warning == "" {
				warning = "a due subscriber came without an id, address or unsubscribe URL"
			}
			continue
		}
		msgs = append(msgs, Message{
			Key:                "digest:" + sub.ID + ":" + run.Edition,
			Recipient:          sub.Email,
			ContentID:          contentID,
			Variables:          map[string]string{"unsubscribe_url": sub.UnsubscribeURL},
			ListUnsubscribeURL: sub.UnsubscribeURL,
		})
	}
	if len(msgs) == 0 {
		return c, warning
	}
	results, err := s.cfg.Sender.Enqueue(ctx, msgs)
	switch {
	case ctx.Err() != nil:
		// Interrupted: the batch may or may not be queued; the next run
		// finds out (as duplicates), so count nothing.
		return c, warning
	case !errors.Is(err, ErrRejected) || len(msgs) == 1:
		return tally(c, warning, len(msgs), results, err)
	}
	for i := range msgs {
		results, err := s.cfg.Sender.Enqueue(ctx, msgs[i:i+1])
		if ctx.Err() != nil {
			return c, warning
		}
		c, warning = tally(c, warning, 1, results, err)
	}
	return c, warning
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
