package poller_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/poller"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

// now is the tests' wall clock: the morning after the fixture's list.
var now = time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)

// fakeClock stands still; every After call is reported on waits, and fires
// only when the test sends on the wait's fire channel.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan wait
}

type wait struct {
	d    time.Duration
	fire chan time.Time
}

func newClock() *fakeClock { return &fakeClock{now: now, waits: make(chan wait, 100)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- wait{d: d, fire: ch}
	return ch
}

// next returns the next wait the poller asked for, failing after a
// deadline.
func (c *fakeClock) next(t *testing.T) wait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the poller asked for no wait within 10s")
		return wait{}
	}
}

// recorder is the poller's Metrics, kept for assertions.
type recorder struct {
	mu       sync.Mutex
	outcomes []string
	created  int
	updated  int
	leader   []bool
}

func (r *recorder) Request(_, outcome string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, outcome)
}

func (r *recorder) Papers(_ string, created, updated int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created += created
	r.updated += updated
}

func (r *recorder) Leader(held bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leader = append(r.leader, held)
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.outcomes...)
}

// source is a local HTTP server standing in for a paper source; handler
// can be swapped while it runs, and every request is logged.
type source struct {
	*httptest.Server
	handler  atomic.Pointer[http.HandlerFunc]
	mu       sync.Mutex
	requests []string
}

func newSource(t *testing.T, h http.HandlerFunc) *source {
	s := &source{}
	s.set(h)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.URL.RequestURI())
		s.mu.Unlock()
		(*s.handler.Load())(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *source) set(h http.HandlerFunc) { s.handler.Store(&h) }

func (s *source) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// serve answers with body and content type.
func serve(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	store   *redisstore.Store
	papers  *library.Service
	clock   *fakeClock
	metrics *recorder
	// timeout is the pollers' request timeout: safetyTimeout unless a test
	// is about the timeout itself.
	timeout time.Duration
}

// safetyTimeout bounds a request in tests that are not about the timeout:
// only a safety net, so long enough for a starved CPU (reading a 1 MiB
// body under -race at load 30 can take more than a second).
const safetyTimeout = 30 * time.Second

func newHarness(t *testing.T) *harness {
	t.Helper()
	store := redisstore.New(redistest.Start(t, redistest.WithoutAppendOnly()).Client())
	clock := newClock()
	papers, err := library.New(library.Config{Store: store, MaxImportBytes: library.MaxImportBytes, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{store: store, papers: papers, clock: clock, metrics: &recorder{}, timeout: safetyTimeout}
}

// poller returns a poller of the sources, with the harness's store as the
// lease, its clock and its metrics.
func (h *harness) poller(t *testing.T, sources ...poller.Source) *poller.Poller {
	t.Helper()
	p, err := poller.New(poller.Config{
		Sources: sources, Days: 2, Interval: 15 * time.Minute, Timeout: h.timeout,
		Backoff: 30 * time.Second, MaxBackoff: 4 * time.Minute, MaxBodyBytes: 1 << 20, // MaxBackoff is raised to the interval
		Importer: h.papers, Lease: h.store, Clock: h.clock, Metrics: h.metrics,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UserAgent: "paperroute-test",
		Jitter: func() float64 { return 0.5 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stored counts the papers in the store.
func (h *harness) stored(t *testing.T) int {
	t.Helper()
	papers, _, err := h.store.ListPapersByDay(context.Background(), "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(papers)
}

func hf(base string) poller.Source {
	return poller.Source{Name: "hf", Kind: poller.KindHFDaily, BaseURL: base}
}

func arxivCat(base, cat string) poller.Source {
	return poller.Source{Name: "arxiv:" + cat, Kind: poller.KindArxiv, BaseURL: base, Category: cat}
}
