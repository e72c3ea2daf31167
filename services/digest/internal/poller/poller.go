// Package poller fetches papers from the configured sources (the Hugging
// Face daily papers API, arXiv categories) on an interval and imports them
// through the paper library, so that papers arrive, and their counts move,
// without an operator.
//
// One poller runs across all replicas: a lease (Lease) elects the one that
// polls, and it keeps the lease through its wait, so a Retry-After it was
// told is honoured by whichever replica polls next. Within a process a
// round never overlaps another (Poll refuses with ErrBusy). Errors back off
// exponentially with jitter; 429 and 503 answers with Retry-After, and
// RateLimit headers saying nothing remains, pause the source for as long
// as the server asks (up to MaxRetryAfter). Requests to arXiv are spaced
// at least ArxivGap apart and go one at a time.
//
// Time comes from an injected Clock, and metrics go through the small
// Metrics interface, so the package imports neither Prometheus nor Redis.
package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/library"
)

// Defaults and bounds.
const (
	// DefaultBackoff is the wait after the first failed round; it doubles
	// with every further failed round up to MaxBackoff.
	DefaultBackoff = 30 * time.Second
	// MaxRetryAfter bounds how long a server's Retry-After or RateLimit
	// reset can pause polling.
	MaxRetryAfter = 6 * time.Hour
	// releaseTimeout bounds giving up the lease on shutdown.
	releaseTimeout = 5 * time.Second
)

// ErrBusy is returned by Poll while another round is in progress.
var ErrBusy = errors.New("poller: a round is already running")

// Importer stores a fetched document, all or nothing.
type Importer interface {
	Import(ctx context.Context, format library.Format, data []byte) (library.ImportResult, error)
}

// Lease elects the one poller among replicas.
type Lease interface {
	// AcquirePollerLease takes the lease for holder, or renews it if holder has
	// it, for ttl; false means another holder has it.
	AcquirePollerLease(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	// ReleasePollerLease gives the lease up if holder has it.
	ReleasePollerLease(ctx context.Context, holder string) error
}

// Clock is the poller's time.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

// Metrics receives what the poller does. Outcomes: "ok", "rate_limited",
// "http_error", "timeout", "network", "too_large", "invalid" (the document
// was refused), "store_error".
type Metrics interface {
	// Request counts one fetch of source and how it ended.
	Request(source, outcome string, elapsed time.Duration)
	// Papers counts papers a fetch created and refreshed.
	Papers(source string, created, updated int)
	// Leader reports whether this replica holds the lease.
	Leader(held bool)
}

// Config is what a Poller needs.
type Config struct {
	// Sources to poll, in order. At least one.
	Sources []Source
	// Days is how many days of the daily list each round fetches, today
	// (UTC) first: 2 = today and yesterday. 1..MaxDays.
	Days int
	// Interval is the wait between two successful rounds.
	Interval time.Duration
	// Timeout bounds one request, body included.
	Timeout time.Duration
	// Backoff is the wait after the first failed round (DefaultBackoff if
	// 0); MaxBackoff caps its doubling (Interval if 0, and never less).
	Backoff, MaxBackoff time.Duration
	// MaxBodyBytes bounds a response body.
	MaxBodyBytes int
	Importer     Importer
	Lease        Lease
	// Clock is required (time.Now and time.After in production).
	Clock   Clock
	Metrics Metrics
	Logger  *slog.Logger
	// HTTP is the client; nil means one with at most one connection per
	// host (arXiv asks for one connection at a time).
	HTTP *http.Client
	// UserAgent identifies paperroute to the sources.
	UserAgent string
	// Jitter returns a number in [0, 1); nil means math/rand.
	Jitter func() float64
}

// Poller polls the sources. Create it with New and call Run.
type Poller struct {
	cfg      Config
	holder   string
	budget   time.Duration // the longest a round can take
	running  atomic.Bool
	mu       sync.Mutex // guards lastGap and failures
	lastGap  time.Time  // when the last request to a source with a Gap started
	failures int        // consecutive failed rounds
}

// New checks cfg and returns a Poller.
func New(cfg Config) (*Poller, error) {
	switch {
	case len(cfg.Sources) == 0:
		return nil, errors.New("poller: no sources")
	case cfg.Importer == nil || cfg.Lease == nil || cfg.Clock == nil || cfg.Metrics == nil || cfg.Logger == nil:
		return nil, errors.New("poller: Importer, Lease, Clock, Metrics and Logger are required")
	case cfg.Days < 1 || cfg.Days > MaxDays:
		return nil, fmt.Errorf("poller: Days %d is outside 1..%d", cfg.Days, MaxDays)
	case cfg.Interval <= 0 || cfg.Timeout <= 0 || cfg.MaxBodyBytes <= 0:
		return nil, errors.New("poller: Interval, Timeout and MaxBodyBytes must be positive")
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.Interval, cfg.Backoff)
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	if cfg.Jitter == nil {
		cfg.Jitter = mathrand.Float64
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("poller: holder id: %w", err)
	}
	requests := 0
	for _, s := range cfg.Sources {
		requests += len(s.URLs(time.Time{}, cfg.Days))
	}
	budget := time.Duration(requests)*(cfg.Timeout+ArxivGap) + time.Minute
	return &Poller{cfg: cfg, holder: hex.EncodeToString(id[:]), budget: budget}, nil
}

// Run polls until ctx is done, then gives up the lease and returns nil.
func (p *Poller) Run(ctx context.Context) error {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := p.cfg.Lease.ReleasePollerLease(rctx, p.holder); err != nil {
			p.cfg.Logger.Warn("poller: could not release the lease; another replica takes over when it expires", "err", err)
		}
		p.cfg.Metrics.Leader(false)
	}()
	for {
		wait := p.cycle(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-p.cfg.Clock.After(wait):
		}
	}
}

// cycle takes the lease and, if this replica has it, runs one round; it
// returns how long to wait before the next cycle.
func (p *Poller) cycle(ctx context.Context) time.Duration {
	log := p.cfg.Logger
	held, err := p.cfg.Lease.AcquirePollerLease(ctx, p.holder, p.budget)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		log.Warn("poller: could not take the lease", "err", err)
		return p.backoff(true)
	}
	p.cfg.Metrics.Leader(held)
	if !held {
		return p.cfg.Interval // another replica polls; check again later
	}
	round, err := p.Poll(ctx)
	if err != nil || ctx.Err() != nil {
		return p.cfg.Interval
	}
	wait := p.backoff(round.Failed > 0)
	if round.RetryAfter > wait {
		wait = round.RetryAfter
	}
	// Keep the lease through the wait: the next round is ours, and a pause
	// a server asked for binds every replica.
	if _, err := p.cfg.Lease.AcquirePollerLease(ctx, p.holder, wait+p.budget); err != nil && ctx.Err() == nil {
		log.Warn("poller: could not extend the lease", "err", err)
	}
	level := slog.LevelInfo
	if round.Failed > 0 {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "poller: round finished", "requests", round.Requests, "failed", round.Failed,
		"created", round.Created, "updated", round.Updated, "next_in", wait.String())
	return wait
}

// backoff records whether the round failed and returns the wait before the
// next: Interval after a success; after the n-th failure in a row
// Backoff·2^(n-1), capped at MaxBackoff, of which a random half is taken
// off (equal jitter) so that replicas and restarts spread out.
func (p *Poller) backoff(failed bool) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !failed {
		p.failures = 0
		return p.cfg.Interval
	}
	p.failures++
	d := p.cfg.Backoff
	for i := 1; i < p.failures && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	return d/2 + time.Duration(p.cfg.Jitter()*float64(d/2))
}

// Round is what one round did.
type Round struct {
	// Requests made and how many of them Failed.
	Requests, Failed int
	// Created and Updated papers.
	Created, Updated int
	// RetryAfter is the longest pause a server asked for; 0 if none.
	RetryAfter time.Duration
}

// Poll fetches every source once and imports what it gets. A source that
// answers 429 (or says its rate limit is spent) is left for the rest of the
// round. It returns ErrBusy if a round is already running.
func (p *Poller) Poll(ctx context.Context) (Round, error) {
	if !p.running.CompareAndSwap(false, true) {
		return Round{}, ErrBusy
	}
	defer p.running.Store(false)
	var r Round
	now := p.cfg.Clock.Now()
	for _, src := range p.cfg.Sources {
		for _, u := range src.URLs(now, p.cfg.Days) {
			if err := p.space(ctx, src); err != nil {
				return r, nil // shutting down
			}
			res := p.fetchAndImport(ctx, src, u)
			if ctx.Err() != nil {
				return r, nil
			}
			r.Requests++
			r.Created += res.created
			r.Updated += res.updated
			if res.err != nil {
				r.Failed++
				p.cfg.Logger.Warn("poller: fetch failed", "source", src.Name, "url", u, "outcome", res.outcome, "err", res.err)
			}
			r.RetryAfter = max(r.RetryAfter, res.retryAfter)
			if res.retryAfter > 0 {
				break // the source asked for a pause
			}
		}
	}
	return r, nil
}

// space waits until a request to src keeps the source's Gap after the
// previous one.
func (p *Poller) space(ctx context.Context, src Source) error {
	if src.Gap() <= 0 {
		return nil
	}
	p.mu.Lock()
	last := p.lastGap
	p.mu.Unlock()
	if !last.IsZero() {
		if wait := src.Gap() - p.cfg.Clock.Now().Sub(last); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-p.cfg.Clock.After(wait):
			}
		}
	}
	p.mu.Lock()
	p.lastGap = p.cfg.Clock.Now()
	p.mu.Unlock()
	return nil
}
