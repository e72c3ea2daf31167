package digest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

// Defaults and bounds of the service's knobs.
const (
	// DefaultPageSize and MaxPageSize bound ListDigestRuns pages.
	DefaultPageSize = 50
	MaxPageSize     = 500
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
	// HeartbeatInterval is how often a RUNNING run says it is alive, and
	// StaleAfter how long without that until it counts as dead (FAILED).
	HeartbeatInterval = 20 * time.Second
	StaleAfter        = 2 * time.Minute
)

// Config is what a Service needs.
type Config struct {
	Papers      PaperStore
	Runs        RunStore
	Subscribers Subscribers
	Sender      Sender
	Renderer    Renderer
	// Sent is the never-resend memory.
	Sent SentStore
	// Preferences serves PreviewSubscriber; nil refuses such previews.
	Preferences PreferenceSource
	// Catalogue is the topic catalogue readers choose from.
	Catalogue *ranking.Catalogue
	// Ranking are the trending parameters; Ranking.Window is the window of
	// a daily edition, WeeklyWindow that of a weekly one.
	Ranking      ranking.Params
	WeeklyWindow time.Duration
	// SentMemory is how long the papers sent to a subscriber are
	// remembered (never sent again); longer than both windows.
	SentMemory time.Duration
	// Logger receives one line per run start and end. Required.
	Logger *slog.Logger
	// PapersPerEdition is how many papers an edition carries (1..50).
	PapersPerEdition int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tracer traces runs and their pages; nil means no tracing.
	Tracer Tracer
	// Metrics, if set, is told when runs start and end.
	Metrics Metrics
}

// Service imports papers and runs digests. Runs work in the background,
// tied to the Service's lifetime rather than to the request that started
// them; Shutdown stops them.
type Service struct {
	cfg Config
	now func() time.Time

	// quit is closed by Shutdown; every run's context ends with it.
	quit   chan struct{}
	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Papers == nil || cfg.Runs == nil || cfg.Subscribers == nil || cfg.Sender == nil || cfg.Renderer == nil ||
		cfg.Sent == nil || cfg.Catalogue == nil || cfg.Logger == nil:
		return nil, errors.New("digest: Papers, Runs, Subscribers, Sender, Renderer, Sent, Catalogue and Logger are required")
	case cfg.Ranking.Window <= 0 || cfg.WeeklyWindow <= 0 || cfg.Ranking.Gravity <= 0 || cfg.Ranking.OffsetHours <= 0:
		return nil, errors.New("digest: Ranking (window, gravity, offset) and WeeklyWindow must be positive")
	case cfg.SentMemory < max(cfg.Ranking.Window, cfg.WeeklyWindow):
		return nil, fmt.Errorf("digest: SentMemory %v must be at least the longest window", cfg.SentMemory)
	case cfg.PapersPerEdition < 1 || cfg.PapersPerEdition > 50:
		return nil, fmt.Errorf("digest: PapersPerEdition %d is outside 1..50", cfg.PapersPerEdition)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return &Service{cfg: cfg, now: now, quit: make(chan struct{})}, nil
}

// background starts fn in a goroutine counted by Shutdown, with a context
// that ends when Shutdown is called. It returns ErrShuttingDown after
// Shutdown. start runs before the goroutine, under the same admission:
// when it fails, fn does not run.
func (s *Service) background(start func() error, fn func(ctx context.Context)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrShuttingDown
	}
	s.wg.Add(1)
	s.mu.Unlock()
	if err := start(); err != nil {
		s.wg.Done()
		return err
	}
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		fn(ctx)
	}()
	return nil
}

// Shutdown stops new runs, interrupts the ones in flight (they are marked
// FAILED with "interrupted by shutdown; run it again": running an edition
// again is safe) and waits for them until ctx is done.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
	s.mu.Unlock()
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
