// Package archive keeps the editions of the public trending digest: what
// the front page showed on each day (and in each ISO week), frozen once the
// day (week) is over, for the web archive (/editions/…) and the Atom feed.
//
// How an edition comes to be: a Recorder asks the trending ranking for the
// public list (no topics, no subscriber) every Interval and stores it as the
// edition of the current UTC date, and the weekly list as the edition of the
// current ISO week. While the day lasts, the edition follows the ranking
// (upvotes keep coming in); once the day is over nothing writes its key
// again, so it stays as it stood at the day's last recording. A day on which
// the service never ran has no edition. Editions are copies of the papers'
// public fields (title, authors, abstract, counts, links): no reader, no
// subscriber and no personal data are in them, and a paper deleted later
// still shows in the editions that carried it.
package archive

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

// ErrNotFound means there is no edition with that id.
var ErrNotFound = errors.New("archive: no such edition")

// Edition is one edition of the public trending digest.
type Edition struct {
	// ID is "2026-06-12" for a daily edition, "2026-W24" for a weekly one.
	ID string
	// Weekly tells the two kinds apart.
	Weekly bool
	// Updated is when the edition was last recorded.
	Updated time.Time
	// Cards are the papers, best trending score first.
	Cards []Card
}

// Card is one paper of an edition, as the public saw it.
type Card struct {
	ID          string
	Title       string
	Summary     string
	Authors     []string
	Upvotes     int
	Comments    int
	GitHubStars int
	GitHubRepo  string
	ProjectPage string
	// URL is the paper's page (https://huggingface.co/papers/<id>).
	URL string
	// Why is the card's "why trending" line.
	Why string
}

// Ref names a stored edition, for listing.
type Ref struct {
	ID      string
	Weekly  bool
	Updated time.Time
}

// Store keeps editions.
type Store interface {
	// PutEdition stores e, replacing an edition with the same id.
	PutEdition(ctx context.Context, e Edition) error
	// GetEdition returns the edition id, or ErrNotFound.
	GetEdition(ctx context.Context, id string) (Edition, error)
	// ListEditions returns up to limit editions, most recently updated
	// first.
	ListEditions(ctx context.Context, limit int) ([]Ref, error)
}

// Trending is the part of the digest service the archive needs: the public
// trending list (digest.Service.Trending).
type Trending interface {
	Trending(ctx context.Context, window time.Duration, limit int, topics []string) ([]ranking.Pick, []float64, error)
}

var (
	dailyID  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	weeklyID = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)
)

// ParseID checks an edition id from a URL: a real date "YYYY-MM-DD" or an
// ISO week "YYYY-Www" (01..53, and 53 only in years that have it). It
// reports whether the id is weekly.
func ParseID(id string) (weekly bool, err error) {
	switch {
	case dailyID.MatchString(id):
		if _, err := time.Parse(time.DateOnly, id); err != nil {
			return false, fmt.Errorf("archive: %q is not a date", id)
		}
		return false, nil
	case weeklyID.MatchString(id):
		m := weeklyID.FindStringSubmatch(id)
		y, _ := strconv.Atoi(m[1])
		w, _ := strconv.Atoi(m[2])
		// December 28 is always in the last ISO week of its year.
		_, last := time.Date(y, time.December, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
		if w < 1 || w > last {
			return false, fmt.Errorf("archive: %q is not an ISO week", id)
		}
		return true, nil
	}
	return false, fmt.Errorf("archive: %q is neither YYYY-MM-DD nor YYYY-Www", id)
}

// DailyID is the id of the daily edition of instant t (its UTC date).
func DailyID(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// WeeklyID is the id of the weekly edition of instant t (its UTC ISO week).
func WeeklyID(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// WeekStart is the Monday (UTC midnight) that starts ISO week id.
func WeekStart(id string) (time.Time, error) {
	m := weeklyID.FindStringSubmatch(id)
	if m == nil {
		return time.Time{}, fmt.Errorf("archive: %q is not an ISO week", id)
	}
	y, _ := strconv.Atoi(m[1])
	w, _ := strconv.Atoi(m[2])
	// January 4 is always in week 1.
	jan4 := time.Date(y, time.January, 4, 0, 0, 0, 0, time.UTC)
	monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	return monday.AddDate(0, 0, 7*(w-1)), nil
}

// Cards turns ranking picks into edition cards.
func Cards(picks []ranking.Pick) []Card {
	cards := make([]Card, len(picks))
	for i, p := range picks {
		pp := p.Paper
		cards[i] = Card{
			ID: pp.ID, Title: pp.Title, Summary: pp.Summary, Authors: pp.Authors,
			Upvotes: pp.Upvotes, Comments: pp.Comments, GitHubStars: pp.GitHubStars,
			GitHubRepo: pp.GitHubRepo, ProjectPage: pp.ProjectPage, URL: pp.URL(), Why: p.Why,
		}
	}
	return cards
}
