// Package paper defines the research paper paperroute stores and mails, and
// the rules every stored paper satisfies whatever source it came from.
package paper

import (
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Bounds every stored paper satisfies. Sources check them on import, so the
// renderer and the store can rely on them.
const (
	// MaxTitleRunes bounds a title (after whitespace is collapsed).
	MaxTitleRunes = 1000
	// MaxSummaryRunes bounds an abstract.
	MaxSummaryRunes = 20000
	// MaxAISummaryRunes bounds a machine summary.
	MaxAISummaryRunes = 5000
	// MaxAuthors is how many author names are kept; longer lists (large
	// collaborations) are cut, not rejected.
	MaxAuthors = 200
	// MaxAuthorRunes bounds one author name.
	MaxAuthorRunes = 200
	// MaxKeywords bounds the keyword list.
	MaxKeywords = 100
	// MaxKeywordRunes bounds one keyword.
	MaxKeywordRunes = 200
	// MaxURLBytes bounds a link (GitHub repository, project page).
	MaxURLBytes = 500
	// MaxCount is the largest upvote, comment or star count kept; the API
	// carries them as int32.
	MaxCount = 1<<31 - 1
)

// Paper is one research paper, keyed by its arXiv id.
type Paper struct {
	// ID is the arXiv id without a version suffix: "2606.13681" (new style)
	// or "hep-th/9901001" (old style).
	ID string
	// Title is the title with whitespace collapsed, 1..MaxTitleRunes runes.
	Title string
	// Summary is the abstract with whitespace collapsed; may be empty.
	Summary string
	// Authors are the visible author names in order, at most MaxAuthors.
	Authors []string
	// Upvotes, Comments and GitHubStars are the source's counts, clamped to
	// 0..MaxCount.
	Upvotes     int
	Comments    int
	GitHubStars int
	// GitHubRepo and ProjectPage are https URLs or empty.
	GitHubRepo  string
	ProjectPage string
	// AISummary is a one-sentence machine summary, if the source has one.
	AISummary string
	// Keywords are the source's keywords.
	Keywords []string
	// PublishTime is when the paper appeared on arXiv; zero if unknown.
	PublishTime time.Time
	// SubmitTime is when it was submitted to the daily list; zero if unknown.
	SubmitTime time.Time
	// UpdateTime is when paperroute last stored it; set by the store's
	// caller on import.
	UpdateTime time.Time
	// FeaturedDay is the UTC day, "YYYY-MM-DD", the paper was on the Hugging
	// Face daily list (SubmitTime's day). A paper no daily list has carried
	// yet gets its arXiv publication day, or else the day it was first
	// stored; a later daily list replaces that estimate (see Merge). Editions
	// and ranking select papers by it.
	FeaturedDay string
	// Counted says which counts the source reported. A count the source
	// did not report is unknown, not 0: Merge keeps the stored value
	// (a 2026 daily list omits githubStars for papers without code; an
	// arXiv feed has no counts at all).
	Counted CountSet
}

// CountSet is a set of the counts a source reported.
type CountSet uint8

// The counts a source may report.
const (
	CountUpvotes CountSet = 1 << iota
	CountComments
	CountGitHubStars
	// CountAll is every count: what an operator upsert reports.
	CountAll = CountUpvotes | CountComments | CountGitHubStars
)

// Has reports whether every count in c2 is in c.
func (c CountSet) Has(c2 CountSet) bool { return c&c2 == c2 }

// Merge returns the paper to store when next arrives for a paper stored as
// prev (same ID): counts refresh when next reports them; text, authors,
// links and keywords are next's when present and prev's otherwise; a
// featured day from a daily list (next.SubmitTime set) replaces an
// estimated one, never the reverse.
func Merge(prev, next Paper) Paper {
	m := next
	if !next.Counted.Has(CountUpvotes) {
		m.Upvotes = prev.Upvotes
	}
	if !next.Counted.Has(CountComments) {
		m.Comments = prev.Comments
	}
	if !next.Counted.Has(CountGitHubStars) {
		m.GitHubStars = prev.GitHubStars
	}
	m.Counted = prev.Counted | next.Counted
	for _, f := range []struct {
		dst *string
		old string
	}{
		{&m.Title, prev.Title}, {&m.Summary, prev.Summary}, {&m.AISummary, prev.AISummary},
		{&m.GitHubRepo, prev.GitHubRepo}, {&m.ProjectPage, prev.ProjectPage},
	} {
		if *f.dst == "" {
			*f.dst = f.old
		}
	}
	if len(m.Authors) == 0 {
		m.Authors = prev.Authors
	}
	if len(m.Keywords) == 0 {
		m.Keywords = prev.Keywords
	}
	if m.PublishTime.IsZero() {
		m.PublishTime = prev.PublishTime
	}
	if next.SubmitTime.IsZero() {
		m.SubmitTime = prev.SubmitTime
		if prev.FeaturedDay != "" {
			m.FeaturedDay = prev.FeaturedDay
		}
	}
	return m
}

// EstimateFeaturedDay sets FeaturedDay when it is empty: SubmitTime's day,
// else PublishTime's, else now's (all in UTC).
func (p *Paper) EstimateFeaturedDay(now time.Time) {
	switch {
	case p.FeaturedDay != "":
	case !p.SubmitTime.IsZero():
		p.FeaturedDay = Day(p.SubmitTime)
	case !p.PublishTime.IsZero():
		p.FeaturedDay = Day(p.PublishTime)
	default:
		p.FeaturedDay = Day(now)
	}
}

// Day formats t's UTC date as "YYYY-MM-DD".
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Time bounds every stored time satisfies: arXiv began in August 1991, and
// a time more than MaxFuture ahead of the importer's clock is a producer's
// bug (or 9999-12-31), not news.
var earliest = time.Date(1991, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxFuture is how far past now a source's time may lie (time zones and
// clock skew: a daily list is dated up to a day ahead of UTC somewhere).
const MaxFuture = 48 * time.Hour

// CheckTime reports why t is absurd for a paper imported at now, or "".
func CheckTime(t, now time.Time) string {
	switch {
	case t.IsZero():
		return ""
	case t.Before(earliest):
		return "is before 1991, when arXiv began"
	case t.After(now.Add(MaxFuture)):
		return "is more than two days in the future"
	}
	return ""
}

// ParseDay parses a "YYYY-MM-DD" day and checks it against the same bounds
// as CheckTime; ok is false for anything else.
func ParseDay(day string, now time.Time) (time.Time, bool) {
	if len(day) != len(time.DateOnly) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, day)
	if err != nil || t.IsZero() || CheckTime(t, now) != "" {
		return time.Time{}, false
	}
	return t, true
}

// URL is the paper's Hugging Face page.
func (p Paper) URL() string { return "https://huggingface.co/papers/" + p.ID }

var (
	newStyleID  = regexp.MustCompile(`^[0-9]{4}\.[0-9]{4,5}$`)
	oldStyleID  = regexp.MustCompile(`^[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/[0-9]{7}$`)
	versionPart = regexp.MustCompile(`v[0-9]{1,4}$`)
)

// NormalizeID returns the arXiv id raw names without its version suffix
// ("2606.13681v2" → "2606.13681"), and whether it is a valid new-style
// ("YYMM.NNNNN") or old-style ("archive/YYMMNNN") arXiv id.
func NormalizeID(raw string) (string, bool) {
	id := versionPart.ReplaceAllString(raw, "")
	if len(id) > 64 {
		return "", false
	}
	if newStyleID.MatchString(id) || oldStyleID.MatchString(id) {
		return id, true
	}
	return "", false
}

// ValidID reports whether id is a normalised arXiv id, as stored.
func ValidID(id string) bool {
	n, ok := NormalizeID(id)
	return ok && n == id
}

// CleanText collapses every run of whitespace in s to one space, trims the
// ends and drops other control characters, so that untrusted text cannot
// carry line breaks into headers or invisible characters into mail.
//
// A line break after a hyphen inside a word is a hard wrap, not a space:
// "fine-\n  grained" becomes "fine-grained" (a letter or digit on both
// sides of the hyphen, and a line break in the run of whitespace).
func CleanText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space, lineBreak := false, false
	// last and beforeLast are the last two runes written.
	var last, beforeLast rune
	for _, r := range s {
		switch {
		case isSpace(r):
			space = b.Len() > 0
			lineBreak = lineBreak || isLineBreak(r)
			continue
		case isControl(r):
			continue
		}
		if space {
			joined := lineBreak && last == '-' && isWordRune(beforeLast) && isWordRune(r)
			if !joined {
				b.WriteByte(' ')
				beforeLast, last = last, ' '
			}
		}
		space, lineBreak = false, false
		b.WriteRune(r)
		beforeLast, last = last, r
	}
	return b.String()
}

func isLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x85, 0xA0, 0x2028, 0x2029, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// isControl covers C0, DEL, C1 and the bidi overrides/isolates, which can
// reorder surrounding text in a mail client.
func isControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7F && r < 0xA0:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xFEFF, r == 0x200B:
		return true
	}
	return false
}
