package digest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
)

// ctxKey marks contexts, to see which one reaches the tracer.
type ctxKey struct{}

// tracedRun is what a recorder saw of one run.
type tracedRun struct {
	origin any // the ctxKey value of the origin context
	run    digest.Run
	end    digest.RunEnd
	pages  []tracedPage
}

type tracedPage struct {
	inRun       bool // StartPage got the context StartRun returned
	subscribers int
	counts      digest.Counts
	err         error
}

// recorder is an in-memory digest.Tracer.
type recorder struct {
	mu    sync.Mutex
	pages map[string][]tracedPage // by run id
	ended chan tracedRun
}

func newRecorder() *recorder {
	return &recorder{pages: map[string][]tracedPage{}, ended: make(chan tracedRun, 16)}
}

func (r *recorder) StartRun(ctx, origin context.Context, run digest.Run) (context.Context, func(digest.RunEnd)) {
	ctx = context.WithValue(ctx, ctxKey{}, "run "+run.ID)
	return ctx, func(end digest.RunEnd) {
		r.mu.Lock()
		pages := r.pages[run.ID]
		r.mu.Unlock()
		r.ended <- tracedRun{origin: origin.Value(ctxKey{}), run: run, end: end, pages: pages}
	}
}

func (r *recorder) StartPage(ctx context.Context, run digest.Run, subscribers int) (context.Context, func(digest.Counts, error)) {
	inRun := ctx.Value(ctxKey{}) == "run "+run.ID
	return ctx, func(c digest.Counts, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.pages[run.ID] = append(r.pages[run.ID], tracedPage{inRun: inRun, subscribers: subscribers, counts: c, err: err})
	}
}

func (r *recorder) next(t *testing.T) tracedRun {
	t.Helper()
	select {
	case tr := <-r.ended:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no run ended in the tracer within 10s")
		return tracedRun{}
	}
}

// check compares what the tracer saw of a run with the run as stored.
func (tr tracedRun) check(t *testing.T, stored digest.Run, origin string) {
	t.Helper()
	if tr.origin != origin {
		t.Errorf("StartRun's origin context is %v, want %q's", tr.origin, origin)
	}
	if tr.run.ID != stored.ID || tr.end.State != stored.State || tr.end.Counts != stored.Counts || tr.end.Error != stored.Error {
		t.Errorf("tracer saw run %s end %+v, want what was stored: %s %v %+v %q", tr.run.ID, tr.end, stored.ID, stored.State, stored.Counts, stored.Error)
	}
	var sum digest.Counts
	subs := 0
	for i, p := range tr.pages {
		if !p.inRun || p.err != nil {
			t.Errorf("page %d: in the run's context %v, error %v; want in it, no error", i, p.inRun, p.err)
		}
		sum, subs = sum.Add(p.counts), subs+p.subscribers
	}
	if sum != stored.Counts || int64(subs) != stored.Counts.Due {
		t.Errorf("pages add up to %+v over %d subscribers, want the run's %+v", sum, subs, stored.Counts)
	}
}

// TestTracerSeesRunsAndPages checks where a run tells its Tracer it starts
// and ends: an operator's run from the RunDigest call's context, a
// scheduled one from the scheduler's, each with its pages inside the run
// and the outcome that was recorded.
func TestTracerSeesRunsAndPages(t *testing.T) {
	h := newHarness(t, utc("2026-06-12T23:00:00Z"), 5)
	rec := newRecorder()
	h.cfg.Tracer = rec
	h.restart()
	h.importFixture()
	h.addSubs(sub("ada", "UTC", 23), sub("bob", "UTC", 23))

	started, err := h.svc.RunDigest(context.WithValue(context.Background(), ctxKey{}, "RunDigest"), digest.RunRequest{Edition: "2026-06-12"})
	if err != nil {
		t.Fatal(err)
	}
	stored := waitRun(t, h.svc, started.ID)
	if stored.Counts.Queued != 2 {
		t.Fatalf("run = %+v, want 2 queued", stored)
	}
	rec.next(t).check(t, stored, "RunDigest")

	sc := h.scheduler()
	runs, err := sc.Tick(context.WithValue(context.Background(), ctxKey{}, "tick"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("Tick = %v, %v; want one run", runs, err)
	}
	if runs[0].Counts.Duplicate != 2 {
		t.Fatalf("scheduled run = %+v, want the 2 digests as duplicates", runs[0])
	}
	rec.next(t).check(t, runs[0], "tick")
}
