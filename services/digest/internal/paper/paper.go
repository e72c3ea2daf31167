// Package paper defines the research paper paperroute stores and mails, and
// the rules every stored paper satisfies whatever source it came from.
package paper

import (
	"regexp"
	"strings"
	"time"
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
func CleanText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case isSpace(r):
			space = b.Len() > 0
			continue
		case isControl(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

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
