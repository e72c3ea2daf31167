// Package hfdaily parses the Hugging Face daily papers API response
// (https://huggingface.co/api/daily_papers): a JSON array of entries, each
// holding a "paper" object.
//
// Both shapes the API has had parse: the current one (2026: ai_summary,
// ai_keywords, githubRepo, githubStars, organization, and
// paper.submittedOnDailyAt, the day the paper was featured) and the older
// one (2024: none of those; the entry's own publishedAt is the day the paper
// was featured, and title and summary are hard-wrapped and sometimes only on
// the entry, sometimes only on entry.paper). A document in which no entry
// has paper.submittedOnDailyAt is read as the 2024 shape. Fields of
// entry.paper win over the same fields of the entry. Every field is
// optional except paper.id and a title; a count that is absent is unknown
// (paper.Paper.Counted), not 0. Unknown fields are ignored.
//
// The document is untrusted. Parse bounds its size, entry count and nesting
// depth, validates every paper, and is all or nothing: one invalid entry
// makes the whole document invalid, with a *validation.Error on the field
// "data" that names the entry by its (0-based) index.
package hfdaily

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Document bounds.
const (
	// MaxBytes is the largest document Parse reads.
	MaxBytes = 8 << 20
	// MaxEntries is the largest number of entries in one document.
	MaxEntries = 2000
	// MaxDepth bounds how deeply arrays and objects may nest. Real documents
	// nest about 5 levels (entry → paper → authors → author → user).
	MaxDepth = 32
	// maxProblems is how many invalid entries one error lists.
	maxProblems = 10
)

// Field is the request field every violation names.
const Field = "data"

// Parse is ParseAt(data, time.Now()).
func Parse(data []byte) ([]paper.Paper, error) { return ParseAt(data, time.Now()) }

// ParseAt parses and validates a daily papers document fetched at now (times
// more than paper.MaxFuture after now, or before 1991, are refused). It
// returns the papers in document order; an id that occurs more than once
// keeps the position of its first occurrence and the data of its last.
// FeaturedDay is set for papers whose featured day the document tells.
// Errors are *validation.Error on Field.
func ParseAt(data []byte, now time.Time) ([]paper.Paper, error) {
	if len(data) > MaxBytes {
		return nil, validation.Field(Field, fmt.Sprintf("document is %d bytes; the limit is %d", len(data), MaxBytes))
	}
	if err := checkShape(data); err != nil {
		return nil, validation.Field(Field, err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, validation.Field(Field, "not JSON: "+jsonProblem(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, validation.Field(Field, "not a JSON array of entries")
	}

	var entries []entry
	for i := 0; dec.More(); i++ {
		if i >= MaxEntries {
			return nil, validation.Field(Field, fmt.Sprintf("more than %d entries", MaxEntries))
		}
		var e entry
		if err := dec.Decode(&e); err != nil {
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &typeErr) {
				// A syntax error leaves the decoder unusable.
				return nil, validation.Field(Field, fmt.Sprintf("entry %d: not JSON: %s", i, jsonProblem(err)))
			}
			e = entry{decodeErr: err}
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, validation.Field(Field, "not JSON: "+jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, validation.Field(Field, "unexpected data after the array")
	}

	shape2024 := true
	for _, e := range entries {
		if e.Paper != nil && e.Paper.SubmittedOnDailyAt != nil {
			shape2024 = false
			break
		}
	}
	batch := paper.NewBatch(Field, maxProblems)
	for i, e := range entries {
		var (
			p   paper.Paper
			err error
		)
		if e.decodeErr != nil {
			err = errors.New(jsonProblem(e.decodeErr))
		} else {
			p, err = e.toPaper(shape2024, now)
		}
		batch.Add(i, p, err)
	}
	return batch.Papers()
}

// checkShape rejects what encoding/json would otherwise spend effort on:
// invalid UTF-8 and deep nesting (encoding/json allows 10000 levels).
func checkShape(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the document.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Sprintf("is a JSON %s, want an object", typeErr.Value)
		}
		return fmt.Sprintf("%s is a JSON %s, want %s", field, typeErr.Value, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of document"
	}
	return "invalid JSON"
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "a number"
}

// entry is one element of the document. Only the fields paperroute uses
// are declared.
type entry struct {
	// decodeErr is why the entry could not be decoded (a JSON type error).
	decodeErr   error
	Paper       *hfPaper `json:"paper"`
	Title       *string  `json:"title"`
	Summary     *string  `json:"summary"`
	PublishedAt *string  `json:"publishedAt"`
	NumComments *count   `json:"numComments"`
}

type hfPaper struct {
	ID                 *string    `json:"id"`
	Title              *string    `json:"title"`
	Summary            *string    `json:"summary"`
	Authors            []hfAuthor `json:"authors"`
	Upvotes            *count     `json:"upvotes"`
	PublishedAt        *string    `json:"publishedAt"`
	SubmittedOnDailyAt *string    `json:"submittedOnDailyAt"`
	AISummary          *string    `json:"ai_summary"`
	AIKeywords         []string   `json:"ai_keywords"`
	GitHubRepo         *string    `json:"githubRepo"`
	GitHubStars        *count     `json:"githubStars"`
	ProjectPage        *string    `json:"projectPage"`
	NumComments        *count     `json:"numComments"`
}

type hfAuthor struct {
	Name   *string `json:"name"`
	Hidden bool    `json:"hidden"`
}

// count is a non-negative counter that tolerates what a loose producer
// might send for one: floats, negatives (clamped to 0), null, and values
// beyond int32 (clamped to paper.MaxCount).
type count int

func (c *count) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		*c = 0
	case f >= paper.MaxCount:
		*c = paper.MaxCount
	default:
		*c = count(f)
	}
	return nil
}

func (c *count) value() int {
	if c == nil {
		return 0
	}
	return int(*c)
}

// toPaper converts and validates one entry. In the 2024 shape the entry's
// publishedAt is the day it was featured; in the 2026 shape it is the arXiv
// time (again) and paper.submittedOnDailyAt is the featured day.
func (e *entry) toPaper(shape2024 bool, now time.Time) (paper.Paper, error) {
	hp := e.Paper
	if hp == nil {
		return paper.Paper{}, errors.New("paper is missing")
	}
	if hp.ID == nil || *hp.ID == "" {
		return paper.Paper{}, errors.New("paper.id is missing")
	}
	id, ok := paper.NormalizeID(*hp.ID)
	if !ok {
		return paper.Paper{}, fmt.Errorf("paper.id %s is not an arXiv id", quote(*hp.ID))
	}
	p := paper.Paper{ID: id}

	p.Title = paper.CleanText(first(hp.Title, e.Title))
	switch n := utf8.RuneCountInString(p.Title); {
	case n == 0:
		return paper.Paper{}, fmt.Errorf("paper %s: title is empty", id)
	case n > paper.MaxTitleRunes:
		return paper.Paper{}, fmt.Errorf("paper %s: title is %d characters; the limit is %d", id, n, paper.MaxTitleRunes)
	}
	p.Summary = paper.CleanText(first(hp.Summary, e.Summary))
	if n := utf8.RuneCountInString(p.Summary); n > paper.MaxSummaryRunes {
		return paper.Paper{}, fmt.Errorf("paper %s: summary is %d characters; the limit is %d", id, n, paper.MaxSummaryRunes)
	}
	p.AISummary = paper.CleanText(first(hp.AISummary))
	if n := utf8.RuneCountInString(p.AISummary); n > paper.MaxAISummaryRunes {
		return paper.Paper{}, fmt.Errorf("paper %s: ai_summary is %d characters; the limit is %d", id, n, paper.MaxAISummaryRunes)
	}

	for i, a := range hp.Authors {
		name := paper.CleanText(first(a.Name))
		if n := utf8.RuneCountInString(name); n > paper.MaxAuthorRunes {
			return paper.Paper{}, fmt.Errorf("paper %s: authors[%d].name is %d characters; the limit is %d", id, i, n, paper.MaxAuthorRunes)
		}
		if name == "" || a.Hidden || len(p.Authors) == paper.MaxAuthors {
			continue
		}
		p.Authors = append(p.Authors, name)
	}
	if len(hp.AIKeywords) > paper.MaxKeywords {
		return paper.Paper{}, fmt.Errorf("paper %s: %d ai_keywords; the limit is %d", id, len(hp.AIKeywords), paper.MaxKeywords)
	}
	for i, k := range hp.AIKeywords {
		k = paper.CleanText(k)
		if n := utf8.RuneCountInString(k); n > paper.MaxKeywordRunes {
			return paper.Paper{}, fmt.Errorf("paper %s: ai_keywords[%d] is %d characters; the limit is %d", id, i, n, paper.MaxKeywordRunes)
		}
		if k != "" {
			p.Keywords = append(p.Keywords, k)
		}
	}

	if hp.Upvotes != nil {
		p.Upvotes = hp.Upvotes.value()
		p.Counted |= paper.CountUpvotes
	}
	if comments := firstCount(e.NumComments, hp.NumComments); comments != nil {
		p.Comments = comments.value()
		p.Counted |= paper.CountComments
	}
	if hp.GitHubStars != nil {
		p.GitHubStars = hp.GitHubStars.value()
		p.Counted |= paper.CountGitHubStars
	}
	p.GitHubRepo = httpsURL(first(hp.GitHubRepo))
	p.ProjectPage = httpsURL(first(hp.ProjectPage))

	var err error
	if p.PublishTime, err = parseTime(first(hp.PublishedAt), now); err != nil {
		return paper.Paper{}, fmt.Errorf("paper %s: paper.publishedAt: %w", id, err)
	}
	featured, featuredField := hp.SubmittedOnDailyAt, "paper.submittedOnDailyAt"
	if shape2024 {
		featured, featuredField = e.PublishedAt, "publishedAt"
	}
	if p.SubmitTime, err = parseTime(first(featured), now); err != nil {
		return paper.Paper{}, fmt.Errorf("paper %s: %s: %w", id, featuredField, err)
	}
	if !p.SubmitTime.IsZero() {
		p.FeaturedDay = paper.Day(p.SubmitTime)
	}
	return p, nil
}

// firstCount returns the first count present.
func firstCount(counts ...*count) *count {
	for _, c := range counts {
		if c != nil {
			return c
		}
	}
	return nil
}

// first returns the first non-empty string.
func first(values ...*string) string {
	for _, v := range values {
		if v != nil && strings.TrimSpace(*v) != "" {
			return *v
		}
	}
	return ""
}

// httpsURL returns raw if it is an absolute https URL of sane length, else
// "". Links are decoration: a project page on plain http (or a javascript:
// URL) is dropped rather than failing a whole day's import.
func httpsURL(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > paper.MaxURLBytes {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return ""
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7F {
			return ""
		}
	}
	return u.String()
}

// parseTime parses an RFC 3339 time; empty is the zero time. Times before
// arXiv or far past now are refused (paper.CheckTime).
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not an RFC 3339 time", quote(s))
	}
	problem := paper.CheckTime(t, now)
	if t.IsZero() {
		problem = paper.CheckTime(t.Add(time.Nanosecond), now)
	}
	if problem != "" {
		return time.Time{}, fmt.Errorf("%s %s", quote(s), problem)
	}
	return t.UTC(), nil
}

// quote quotes untrusted text for an error message, cut to a readable
// length.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
