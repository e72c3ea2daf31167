package poller_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/digest/internal/poller"
)

// daily serves the fixture for 2026-06-12 and an empty list for any other
// day, as the API does for a day with nothing featured yet.
func daily(t *testing.T, upvotes string) http.HandlerFunc {
	doc := fixture(t, "hf-daily-papers-2026-06-12.json")
	if upvotes != "" {
		doc = bytes.ReplaceAll(doc, []byte(`"upvotes":118,`), []byte(`"upvotes":`+upvotes+`,`))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.URL.Query().Get("date") == "2026-06-12" {
			w.Write(doc)
			return
		}
		w.Write([]byte(`[]`))
	}
}

func TestPollImportsTodayAndYesterday(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	src := newSource(t, daily(t, ""))
	p := h.poller(t, hf(src.URL+"/api/daily_papers"))

	round, err := p.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(poller.Round{Requests: 2, Created: 30}, round); diff != "" {
		t.Errorf("first round (-want +got):\n%s", diff)
	}
	want := []string{"/api/daily_papers?date=2026-06-13", "/api/daily_papers?date=2026-06-12"}
	if diff := cmp.Diff(want, src.seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// Later the same day the counts have moved: the next round refreshes
	// them, so trending moves during the day.
	src.set(daily(t, "240"))
	round, err = p.Poll(ctx)
	if err != nil || round.Updated != 30 || round.Created != 0 || round.Failed != 0 {
		t.Fatalf("second round = %+v, %v; want 30 updated", round, err)
	}
	got, err := h.store.GetPaper(ctx, "2606.13681")
	if err != nil || got.Upvotes != 240 || got.FeaturedDay != "2026-06-12" {
		t.Errorf("refreshed paper = %d upvotes featured %q, %v; want 240 on 2026-06-12", got.Upvotes, got.FeaturedDay, err)
	}
}

func TestPollFaults(t *testing.T) {
	truncated := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "5000")
		w.Write([]byte(`[{"paper":{"id":"2606.00001","title":"T"}},{"pap`))
	}
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		wantOutcome []string
		wantRetry   time.Duration
		wantStored  int
	}{
		{"truncated body", truncated, []string{"network", "network"}, 0, 0},
		{"truncated JSON, length honest", serve("application/json", []byte(`[{"paper":{"id":"2606.00001","title":"T"}},{"pap`)), []string{"invalid", "invalid"}, 0, 0},
		{"HTML instead of JSON", serve("text/html; charset=utf-8", []byte(`<!doctype html><title>Hugging Face</title>`)), []string{"invalid", "invalid"}, 0, 0},
		{"HTML labelled as JSON", serve("application/json", []byte(`<!doctype html><title>Hugging Face</title>`)), []string{"invalid", "invalid"}, 0, 0},
		{"500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) }, []string{"http_error", "http_error"}, 0, 0},
		{"429 with Retry-After", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, []string{"rate_limited"}, 120 * time.Second, 0}, // the second day is not asked
		{"429 with a Retry-After date", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", now.Add(10*time.Minute).Format(http.TimeFormat))
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, []string{"rate_limited"}, 10 * time.Minute, 0},
		{"429 with HF RateLimit headers", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("RateLimit", `"api";r=0;t=240`)
			w.Header().Set("RateLimit-Policy", `"fixed window";"api";q=500;w=300`)
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, []string{"rate_limited"}, 240 * time.Second, 0},
		{"hostile Retry-After is capped", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "99999999999")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, []string{"rate_limited"}, poller.MaxRetryAfter, 0},
		{"slow server past the timeout", slow, []string{"timeout", "timeout"}, 0, 0},
		{"empty list", serve("application/json", []byte(`[]`)), []string{"ok", "ok"}, 0, 0},
		{"oversized body", serve("application/json", []byte(`[`+strings.Repeat(" ", 2<<20)+`]`)), []string{"too_large", "too_large"}, 0, 0},
		{"200 spending the last request", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit", `"api";r=0;t=60`)
			daily(t, "")(w, r)
		}, []string{"ok"}, 60 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if slices.Contains(tt.wantOutcome, "timeout") {
				// The one case about the timeout gets a short one; in
				// the others it is only a safety net.
				h.timeout = 300 * time.Millisecond
			}
			src := newSource(t, tt.handler)
			round, err := h.poller(t, hf(src.URL)).Poll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantOutcome, h.metrics.snapshot()); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			wantFailed := 0
			for _, o := range tt.wantOutcome {
				if o != "ok" {
					wantFailed++
				}
			}
			if round.Failed != wantFailed || round.RetryAfter != tt.wantRetry {
				t.Errorf("round = %+v; want %d failed, retry after %v", round, wantFailed, tt.wantRetry)
			}
			if n := h.stored(t); n != tt.wantStored {
				t.Errorf("%d papers stored, want %d (a failed fetch stores nothing)", n, tt.wantStored)
			}
		})
	}
}

func TestRunBacksOffAndHonoursRetryAfter(t *testing.T) {
	h := newHarness(t)
	src := newSource(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusInternalServerError) })
	p := h.poller(t, hf(src.URL))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// Backoff 30s doubling up to MaxBackoff, which is never below the 15m
	// interval; the test's jitter takes a quarter off. Each step sets what
	// the source answers next before it lets the poller go on.
	tooMany := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}
	steps := []struct {
		want time.Duration
		next http.HandlerFunc // what the source answers in the next round; nil: unchanged
	}{
		{22500 * time.Millisecond, nil}, {45 * time.Second, nil}, {90 * time.Second, nil},
		{180 * time.Second, nil}, {360 * time.Second, nil}, {675 * time.Second, nil},
		{675 * time.Second, tooMany},
		// A 429 asks for longer than the backoff: its Retry-After wins.
		{time.Hour, daily(t, "")},
		// Recovery: the wait is the interval again.
		{15 * time.Minute, nil},
	}
	for i, step := range steps {
		w := h.clock.next(t)
		if w.d != step.want {
			t.Fatalf("wait %d = %v, want %v", i, w.d, step.want)
		}
		if step.next != nil {
			src.set(step.next)
		}
		if i < len(steps)-1 {
			w.fire <- now
		}
	}
	if n := h.stored(t); n != 30 {
		t.Errorf("%d papers stored after recovery, want 30", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestPollNeverOverlaps(t *testing.T) {
	h := newHarness(t)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	src := newSource(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		serve("application/json", []byte(`[]`))(w, r)
	})
	p := h.poller(t, hf(src.URL))
	first := make(chan error, 1)
	go func() { _, err := p.Poll(context.Background()); first <- err }()
	<-entered // the first round is inside its first request
	if _, err := p.Poll(context.Background()); !errors.Is(err, poller.ErrBusy) {
		t.Errorf("second Poll during the first = %v, want ErrBusy", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Poll = %v", err)
	}
	if _, err := p.Poll(context.Background()); err != nil {
		t.Errorf("Poll after the first finished = %v, want nil", err)
	}
}

func TestTwoPollersShareOneLease(t *testing.T) {
	h := newHarness(t)
	src := newSource(t, daily(t, ""))
	a := h.poller(t, hf(src.URL))
	// B is another replica: same Redis (the lease), its own clock and
	// metrics.
	hb := *h
	hb.clock, hb.metrics = newClock(), &recorder{}
	b := hb.poller(t, hf(src.URL))

	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	if w := h.clock.next(t); w.d != 15*time.Minute {
		t.Fatalf("A's first wait = %v, want the interval after a round", w.d)
	}
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	// B's first cycle ends when it asks for its wait: by then it has
	// either polled or found the lease taken.
	wB := hb.clock.next(t)
	if wB.d != 15*time.Minute {
		t.Fatalf("B's first wait = %v, want the interval", wB.d)
	}
	if got := len(src.seen()); got != 2 {
		t.Fatalf("the source got %d requests from two pollers, want 2 (one round, by A)", got)
	}
	hb.metrics.mu.Lock()
	leaderB := append([]bool(nil), hb.metrics.leader...)
	hb.metrics.mu.Unlock()
	if diff := cmp.Diff([]bool{false}, leaderB); diff != "" {
		t.Errorf("B's leader reports (-want +got):\n%s", diff)
	}

	// A stops and gives the lease up; B's next cycle takes it and polls.
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	wB.fire <- now
	if w := hb.clock.next(t); w.d != 15*time.Minute {
		t.Fatalf("B's second wait = %v, want the interval", w.d)
	}
	if got := len(src.seen()); got != 4 {
		t.Errorf("after A stopped the source got %d requests, want 4 (a round by B)", got)
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
}

func TestArxivRequestsAreSpaced(t *testing.T) {
	h := newHarness(t)
	src := newSource(t, serve("application/atom+xml", fixture(t, "arxiv-atom-sample.xml")))
	p := h.poller(t, arxivCat(src.URL, "cs.LG"), arxivCat(src.URL, "cs.CV"))
	done := make(chan poller.Round, 1)
	go func() {
		r, err := p.Poll(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	// The clock stands still, so the second request must wait the full gap.
	w := h.clock.next(t)
	if w.d != poller.ArxivGap {
		t.Fatalf("wait between two arXiv requests = %v, want %v", w.d, poller.ArxivGap)
	}
	if got := len(src.seen()); got != 1 {
		t.Fatalf("%d requests before the gap passed, want 1", got)
	}
	w.fire <- now
	r := <-done
	if r.Requests != 2 || r.Failed != 0 || r.Created != 1 || r.Updated != 1 {
		t.Errorf("round = %+v; want 2 requests, the one paper created then refreshed", r)
	}
	want := "/?max_results=100&search_query=cat%3Acs.LG&sortBy=submittedDate&sortOrder=descending&start=0"
	if got := src.seen()[0]; got != want {
		t.Errorf("arXiv request = %q, want %q", got, want)
	}
}
