package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

// Sender variables every digest carries; the sender fills them per
// recipient.
const (
	VarUnsubscribeURL = "unsubscribe_url"
	VarManageURL      = "manage_url"
)

// assembly is the state of one run across its pages: the rankers (one per
// window), the contents rendered so far, keyed by what they show.
type assembly struct {
	mu       sync.Mutex // guards rankers, contents, first and picked
	run      Run
	now      time.Time
	rankers  map[bool]*ranking.Ranker // by weekly
	contents map[string]content
	first    []string // paper ids of the first rendering
	// picked remembers, by pickKey, the content (or that there is nothing
	// new) of readers who asked for the same and were sent the same
	// papers of the window before: most readers share one of few
	// profiles, so most need neither Pick nor the content lookup.
	picked map[string]picked
}

// windowEnd is the end of the run's paper window: the slot's end, or for an
// edition run the end of that UTC day (or now, if earlier).
func (a *assembly) windowEnd() time.Time {
	if !a.run.Slot.IsZero() {
		return a.run.Slot.Add(schedule.SlotLength)
	}
	d, _ := time.Parse(time.DateOnly, a.run.Edition)
	end := d.AddDate(0, 0, 1)
	if a.now.Before(end) {
		return a.now
	}
	return end
}

func (s *Service) ranker(ctx context.Context, a *assembly, weekly bool) (*ranking.Ranker, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.rankers[weekly]; ok {
		return r, nil
	}
	params := s.cfg.Ranking
	if weekly {
		params.Window = s.cfg.WeeklyWindow
	}
	end := a.windowEnd()
	papers, err := s.cfg.Papers.WindowPapers(ctx, end.Add(-params.Window), end.Add(time.Hour))
	if err != nil {
		return nil, &runError{"could not read the papers", err}
	}
	r := ranking.NewRanker(params, s.cfg.Catalogue, papers, end)
	a.rankers[weekly] = r
	return r, nil
}

// pageWorkers is how many pages of due subscribers a run works on at once:
// while one page waits for Redis or the sender, another is assembled.
const pageWorkers = 4

// pageResult is what one page did.
type pageResult struct {
	counts  Counts
	warning string
	err     error
}

// work lists the due subscribers page by page and assembles, renders and
// queues the pages, several at once. It returns the counts so far, a
// warning for the first enqueue failure, and an error if the run stopped
// early.
func (s *Service) work(ctx context.Context, run Run) (Counts, string, error) {
	a := &assembly{run: run, now: s.now().UTC(), rankers: map[bool]*ranking.Ranker{}, contents: map[string]content{},
		picked: map[string]picked{}}
	// An edition run mails whoever the subscriber service says is due now;
	// a slot run those due in the slot.
	dueTime := run.Slot
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()

	pages := make(chan []DueSubscriber, pageWorkers)
	var listErr error // written before pages is closed
	go func() {
		defer close(pages)
		token := ""
		for {
			subs, next, err := s.cfg.Subscribers.ListDue(wctx, dueTime, DuePageSize, token)
			if err != nil {
				if wctx.Err() == nil {
					listErr = &runError{"could not list the due subscribers", err}
				}
				return
			}
			select {
			case pages <- subs:
			case <-wctx.Done():
				return
			}
			if next == "" {
				return
			}
			if next == token {
				listErr = &runError{"the subscriber service returned the same page token twice", nil}
				return
			}
			token = next
		}
	}()
	results := make(chan pageResult, pageWorkers)
	var wg sync.WaitGroup
	for range pageWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for subs := range pages {
				pctx, endTrace := s.tracer().StartPage(wctx, run, len(subs))
				c, w, err := s.page(pctx, a, subs)
				endTrace(c, err)
				results <- pageResult{c, w, err}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var (
		total    Counts
		warning  string
		firstErr error
		recorded bool
	)
	for r := range results {
		if warning == "" {
			warning = r.warning
		}
		if !recorded && firstErr == nil {
			if first := a.firstPapers(); first != nil {
				recorded = true
				if err := s.cfg.Runs.SetRunPapers(ctx, run.ID, first); err != nil {
					firstErr = &runError{"could not record the edition's papers", err}
					cancel()
				}
			}
		}
		// Record what this page did even if shutdown interrupted it.
		if err := s.addCounts(ctx, run.ID, r.counts); err != nil && firstErr == nil {
			firstErr = &runError{"could not record the run's progress", err}
			cancel()
		}
		total = total.Add(r.counts)
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			cancel()
		}
	}
	switch {
	case firstErr != nil:
	case listErr != nil:
		firstErr = listErr
	case ctx.Err() != nil:
		firstErr = ctx.Err()
	}
	return total, warning, firstErr
}

// job is one due subscriber's digest.
type job struct {
	sub     DueSubscriber
	edition string
	date    time.Time // the day the mail is dated
	weekly  bool
}

// jobs decides who on a page gets which edition.
func (a *assembly) jobs(subs []DueSubscriber) ([]job, Counts, string) {
	var c Counts
	var warning string
	out := make([]job, 0, len(subs))
	for _, sub := range subs {
		weekly := sub.Schedule.Frequency == schedule.Weekly
		var j job
		if a.run.Slot.IsZero() {
			d, _ := time.Parse(time.DateOnly, a.run.Edition)
			p := schedule.Prefs{Frequency: schedule.Daily, Location: time.UTC}
			if weekly {
				p.Frequency = schedule.Weekly
			}
			j = job{sub: sub, edition: schedule.Edition(p, d), date: d, weekly: weekly}
		} else {
			at, edition, ok := schedule.Due(sub.Schedule, a.run.Slot)
			if !ok {
				continue // not due in this slot: not this run's subscriber
			}
			if a.run.Scheduled && !schedule.SameLocalDay(sub.Schedule.Location, at, a.now) {
				c.Due++
				c.Missed++
				continue
			}
			l := at.In(sub.Schedule.Location)
			j = job{sub: sub, edition: edition, date: time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC), weekly: weekly}
		}
		c.Due++
		if sub.ID == "" || sub.Email == "" || sub.UnsubscribeURL == "" {
			c.Failed++
			if warning == "" {
				warning = "a due subscriber came without an id, address or unsubscribe URL"
			}
			continue
		}
		out = append(out, j)
	}
	return out, c, warning
}

// page assembles, renders (once per distinct content), records and queues
// one page of due subscribers.
func (s *Service) page(ctx context.Context, a *assembly, subs []DueSubscriber) (Counts, string, error) {
	jobs, c, warning := a.jobs(subs)
	if len(jobs) == 0 {
		return c, warning, nil
	}
	ids := make([]string, len(jobs))
	except := make(map[string]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.sub.ID
		except[j.sub.ID] = j.edition
	}
	sent, err := s.cfg.Sent.SentPapers(ctx, ids, except, a.now.Add(-s.cfg.SentMemory))
	if err != nil {
		return c, warning, &runError{"could not read what subscribers were sent", err}
	}
	msgs := make([]Message, 0, len(jobs))
	recs := make([]SentRecord, 0, len(jobs))
	for _, j := range jobs {
		r, err := s.ranker(ctx, a, j.weekly)
		if err != nil {
			return c, warning, err
		}
		seen := sent[j.sub.ID]
		key := pickKey(r, j, seen)
		p, ok := a.lookupPicked(key)
		if !ok {
			picks := r.Pick(ranking.Reader{Topics: j.sub.Topics, Keywords: j.sub.Keywords},
				func(id string) bool { return seen[id] }, s.cfg.PapersPerEdition)
			if len(picks) == 0 {
				p.nothing = true
			} else {
				ct, created, err := s.content(ctx, a, j, picks)
				if err != nil {
					return c, warning, err
				}
				if created {
					c.Contents++
				}
				p.ct = ct
			}
			a.rememberPicked(key, p)
		}
		if p.nothing {
			c.Skipped++
			continue
		}
		ct := p.ct
		manage := j.sub.ManageURL
		if manage == "" {
			manage = j.sub.UnsubscribeURL
		}
		recs = append(recs, SentRecord{SubscriberID: j.sub.ID, Edition: j.edition, PaperIDs: ct.paperIDs})
		msgs = append(msgs, Message{
			Key:                "digest:" + j.sub.ID + ":" + j.edition,
			Recipient:          j.sub.Email,
			ContentID:          ct.id,
			Variables:          map[string]string{VarUnsubscribeURL: j.sub.UnsubscribeURL, VarManageURL: manage},
			ListUnsubscribeURL: j.sub.UnsubscribeURL,
		})
	}
	if a.run.DryRun || len(msgs) == 0 {
		return c, warning, nil
	}
	// Remember before queueing: a digest queued but not remembered could
	// send its papers again in the next edition; one remembered but not
	// queued only makes the next edition skip them (and a run again of
	// this edition ignores its own record).
	if err := s.cfg.Sent.RecordSent(ctx, recs, a.now, s.cfg.SentMemory); err != nil {
		return c, warning, &runError{"could not record what subscribers are sent", err}
	}
	e, w := s.enqueue(ctx, msgs)
	if warning == "" {
		warning = w
	}
	return c.Add(e), warning, nil
}

// firstPapers returns the papers of the run's first rendering, if any.
func (a *assembly) firstPapers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first
}

// content returns the stored rendering of picks for j's date, rendering
// and storing it the first time this run needs it.
func (s *Service) content(ctx context.Context, a *assembly, j job, picks []ranking.Pick) (content, bool, error) {
	ed := Edition{Date: j.date, Weekly: j.weekly, Cards: make([]Card, len(picks))}
	h := sha256.New()
	fmt.Fprintf(h, "%s|%v", j.date.Format(time.DateOnly), j.weekly)
	for i, p := range picks {
		ed.Cards[i] = Card{Paper: p.Paper, Why: p.Why, ForYou: p.ForYou}
		fmt.Fprintf(h, "|%s|%v|%s", p.Paper.ID, p.ForYou, p.Why)
	}
	key := hex.EncodeToString(h.Sum(nil))
	// One lock for lookup, render and PutContent: a list is rendered and
	// stored once even when pages race for it (renders are few).
	a.mu.Lock()
	defer a.mu.Unlock()
	if ct, ok := a.contents[key]; ok {
		return ct, false, nil
	}
	msg, err := s.cfg.Renderer.Render(ed)
	if err != nil {
		return content{}, false, &runError{"could not render the edition", err}
	}
	ct := content{paperIDs: make([]string, msg.Cards)}
	for i := range ct.paperIDs {
		ct.paperIDs[i] = picks[i].Paper.ID
	}
	if !a.run.DryRun {
		ct.id, err = s.cfg.Sender.PutContent(ctx, Content{Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text})
		if err != nil {
			return content{}, false, &runError{"could not store the edition's content in the sender", err}
		}
	}
	a.contents[key] = ct
	if a.first == nil {
		a.first = ct.paperIDs
	}
	return ct, true, nil
}

// enqueue queues one page's digests in one batch. If the sender refuses
// the batch because one message is invalid, each message is queued alone,
// so one bad address does not hold back the rest of the page.
func (s *Service) enqueue(ctx context.Context, msgs []Message) (Counts, string) {
	var c Counts
	var warning string
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
