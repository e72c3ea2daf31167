package ranking

import (
	"cmp"
	"slices"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Blend is the weight of relevance against trend when ordering "For you"
// papers: both are normalised to 0..1 over the candidates first.
const Blend = 0.6

// maxShownMatches bounds the "matches:" part of a why line.
const maxShownMatches = 3

// Reader is what one reader asked for: catalogue topic ids and free
// keywords. Both empty means pure trending.
type Reader struct {
	Topics   []string
	Keywords []string
}

// Pick is one paper chosen for a reader.
type Pick struct {
	Paper paper.Paper
	// ForYou is true when the paper matched the reader's topics or
	// keywords; false for "Also trending".
	ForYou bool
	// Matches are the topic labels and keywords the paper matched.
	Matches []string
	// Why is the card's line: counts and matches.
	Why string
}

// Ranker ranks one window of papers for many readers. Build one per
// edition run (NewRanker); it is safe for concurrent use.
type Ranker struct {
	trending []Scored
	ix       *Index
	maxTrend float64
	// topics are the catalogue's topics scored once against the window
	// (read-only): a run picks for many readers who share few topics.
	topics map[string]term
	// inWindow holds the window's paper ids.
	inWindow map[string]bool
}

// NewRanker scores papers featured in the window ending at at.
func NewRanker(params Params, cat *Catalogue, papers []paper.Paper, at time.Time) *Ranker {
	r := &Ranker{trending: params.Trending(papers, at, 0), topics: map[string]term{}}
	window := make([]paper.Paper, len(r.trending))
	r.inWindow = make(map[string]bool, len(r.trending))
	for i, s := range r.trending {
		window[i] = s.Paper
		r.inWindow[s.Paper.ID] = true
		r.maxTrend = max(r.maxTrend, s.Score)
	}
	r.ix = NewIndex(window)
	if cat != nil {
		for _, t := range cat.Topics() {
			best := make([]float64, r.ix.Len())
			for _, ph := range t.Phrases {
				for i, s := range r.ix.Phrase(ph) {
					best[i] = max(best[i], s)
				}
			}
			r.topics[t.ID] = term{label: t.Label, scores: best}
		}
	}
	return r
}

// InWindow reports whether the paper with id is one of the window's: only
// those can change what Pick returns.
func (r *Ranker) InWindow(id string) bool { return r.inWindow[id] }

// Trending returns the window's papers, best trending score first.
func (r *Ranker) Trending() []Scored { return r.trending }

// term is one thing a reader asked for, with its label for the why line.
type term struct {
	label  string
	scores []float64
}

// terms resolves a reader's topics (best phrase per paper) and keywords.
// Unknown topic ids are ignored: the catalogue may have changed since the
// reader chose.
func (r *Ranker) terms(rd Reader) []term {
	var ts []term
	for _, id := range rd.Topics {
		if t, ok := r.topics[id]; ok {
			ts = append(ts, t)
		}
	}
	for _, kw := range rd.Keywords {
		if len(Tokens(kw)) == 0 {
			continue
		}
		ts = append(ts, term{label: kw, scores: r.ix.Phrase(kw)})
	}
	return ts
}

// Matching returns the window's papers that match any of topics, best
// trending first; no topics means all of them.
func (r *Ranker) Matching(topics []string) []Scored {
	if len(topics) == 0 {
		return r.trending
	}
	ts := r.terms(Reader{Topics: topics})
	var out []Scored
	for i, s := range r.trending {
		for _, t := range ts {
			if t.scores[i] > 0 {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Pick chooses up to n papers for rd, leaving out those seen reports as
// already sent: first "For you" (papers matching the reader's topics or
// keywords, by a blend of relevance and trend), then "Also trending" (the
// best trending of the rest; at least a third of the edition when there
// are enough papers). A reader without topics and keywords gets pure
// trending. The result is empty when nothing new qualifies.
func (r *Ranker) Pick(rd Reader, seen func(id string) bool, n int) []Pick {
	if n <= 0 {
		return nil
	}
	taken := make([]bool, len(r.trending))
	var picks []Pick
	if ts := r.terms(rd); len(ts) > 0 {
		type cand struct {
			i       int
			blend   float64
			matches []string
		}
		var cands []cand
		rel := make([]float64, len(r.trending))
		maxRel := 0.0
		for i := range r.trending {
			for _, t := range ts {
				rel[i] += t.scores[i]
			}
			if rel[i] > 0 && !seen(r.trending[i].Paper.ID) {
				maxRel = max(maxRel, rel[i])
				cands = append(cands, cand{i: i})
			}
		}
		for k := range cands {
			c := &cands[k]
			c.blend = Blend*rel[c.i]/maxRel + (1-Blend)*r.trending[c.i].Score/r.maxTrend
			for _, t := range ts {
				if t.scores[c.i] > 0 && len(c.matches) < maxShownMatches {
					c.matches = append(c.matches, t.label)
				}
			}
		}
		slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.blend, a.blend) })
		forYou := n - min(3, n/3)
		for _, c := range cands[:min(len(cands), forYou)] {
			p := r.trending[c.i].Paper
			picks = append(picks, Pick{Paper: p, ForYou: true, Matches: c.matches, Why: Why(p, c.matches)})
			taken[c.i] = true
		}
	}
	for i, s := range r.trending {
		if len(picks) == n {
			break
		}
		if taken[i] || seen(s.Paper.ID) {
			continue
		}
		picks = append(picks, Pick{Paper: s.Paper, Why: Why(s.Paper, nil)})
	}
	return picks
}
