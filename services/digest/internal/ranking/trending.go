package ranking

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Params are the trending score's parameters (docs/ranking.md explains
// each choice).
type Params struct {
	// CommentWeight is how many upvotes one comment is worth.
	CommentWeight float64
	// StarWeight multiplies ln(1 + GitHub stars): stars come in the
	// thousands for a popular repository, so they count logarithmically.
	StarWeight float64
	// Offset is added to the age in hours, so a paper featured a minute ago
	// does not divide by almost zero.
	OffsetHours float64
	// Gravity is the exponent of the age: higher makes older papers sink
	// faster.
	Gravity float64
	// Window is how far back (by featured time) a paper can still trend.
	Window time.Duration
}

// DefaultParams returns the published parameters.
func DefaultParams() Params {
	return Params{
		CommentWeight: 2,
		StarWeight:    3,
		OffsetHours:   2,
		Gravity:       1.5,
		Window:        72 * time.Hour,
	}
}

// FeaturedAt is when a paper entered the daily list: its submit time on
// the daily papers list; else, on its featured day (FeaturedDay, which the
// by-day index and ListPapers go by), its arXiv publish time or when
// paperroute stored it if either falls on that day, or else the start of
// that day. A paper without a featured day falls back to the publish time,
// then the update time.
//
// The featured day comes before the update time because an import
// refreshes the update time (and keeps the featured day): a paper whose
// source tells no time would otherwise be "featured" anew by every
// refresh.
func FeaturedAt(p paper.Paper) time.Time {
	if !p.SubmitTime.IsZero() {
		return p.SubmitTime
	}
	if day, err := time.Parse(time.DateOnly, p.FeaturedDay); err == nil {
		for _, t := range []time.Time{p.PublishTime, p.UpdateTime} {
			if !t.IsZero() && paper.Day(t) == p.FeaturedDay {
				return t
			}
		}
		return day
	}
	if !p.PublishTime.IsZero() {
		return p.PublishTime
	}
	return p.UpdateTime
}

// Points are a paper's votes of interest: upvotes, comments and
// (logarithmic) GitHub stars.
func (pr Params) Points(p paper.Paper) float64 {
	return float64(p.Upvotes) + pr.CommentWeight*float64(p.Comments) + pr.StarWeight*math.Log1p(float64(p.GitHubStars))
}

// Score is the trending score of p at instant at:
//
//	(points + 1) / (age in hours + OffsetHours) ^ Gravity
//
// A paper featured after at (a clock skew, or a future featured date) has
// age 0.
func (pr Params) Score(p paper.Paper, at time.Time) float64 {
	age := at.Sub(FeaturedAt(p)).Hours()
	if age < 0 {
		age = 0
	}
	return (pr.Points(p) + 1) / math.Pow(age+pr.OffsetHours, pr.Gravity)
}

// InWindow reports whether p was featured within the window ending at at
// (a paper featured up to an hour after at still counts: clocks differ).
func (pr Params) InWindow(p paper.Paper, at time.Time) bool {
	f := FeaturedAt(p)
	return !f.Before(at.Add(-pr.Window)) && !f.After(at.Add(time.Hour))
}

// Scored is a paper with its trending score.
type Scored struct {
	Paper paper.Paper
	Score float64
}

// Trending returns the papers of the window ending at at, best trending
// score first (ties: more points, then arXiv id), at most limit (0: all).
func (pr Params) Trending(papers []paper.Paper, at time.Time, limit int) []Scored {
	out := make([]Scored, 0, len(papers))
	for _, p := range papers {
		if pr.InWindow(p, at) {
			out = append(out, Scored{Paper: p, Score: pr.Score(p, at)})
		}
	}
	slices.SortFunc(out, func(a, b Scored) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		if c := cmp.Compare(pr.Points(b.Paper), pr.Points(a.Paper)); c != 0 {
			return c
		}
		return cmp.Compare(a.Paper.ID, b.Paper.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
