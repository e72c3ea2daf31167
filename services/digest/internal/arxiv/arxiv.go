// Package arxiv parses an arXiv API response (an Atom 1.0 feed from
// export.arxiv.org/api/query): one entry per paper, with its arXiv
// abstract URL as id, title, abstract, authors and publication time.
//
// The document is untrusted. Parse bounds its size and entry count,
// validates every entry and is all or nothing: one invalid entry makes the
// whole document invalid, with a *validation.Error on the field "data" that
// names the entry by its (0-based) index. An arXiv feed has no counts, so
// the papers it yields report none (paper.Paper.Counted is empty) and an
// import never resets upvotes a daily list brought.
package arxiv

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
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
	// MaxEntries is the largest number of entries in one document (the
	// arXiv API's own page limit is 2000).
	MaxEntries = 2000
	// maxProblems is how many invalid entries one error lists.
	maxProblems = 10
)

// Field is the request field every violation names.
const Field = "data"

const (
	atomNS  = "http://www.w3.org/2005/Atom"
	arxivNS = "http://arxiv.org/schemas/atom"
)

type entry struct {
	ID        string   `xml:"http://www.w3.org/2005/Atom id"`
	Title     string   `xml:"http://www.w3.org/2005/Atom title"`
	Summary   string   `xml:"http://www.w3.org/2005/Atom summary"`
	Published string   `xml:"http://www.w3.org/2005/Atom published"`
	Authors   []author `xml:"http://www.w3.org/2005/Atom author"`
	Comment   string   `xml:"http://arxiv.org/schemas/atom comment"`
}

type author struct {
	Name string `xml:"http://www.w3.org/2005/Atom name"`
}

// Parse parses and validates an arXiv Atom feed fetched at now. It returns
// the papers in document order; an id that occurs more than once keeps the
// position of its first occurrence and the data of its last. Errors are
// *validation.Error on Field.
func Parse(data []byte, now time.Time) ([]paper.Paper, error) {
	if len(data) > MaxBytes {
		return nil, validation.Field(Field, fmt.Sprintf("document is %d bytes; the limit is %d", len(data), MaxBytes))
	}
	if !utf8.Valid(data) {
		return nil, validation.Field(Field, "not valid UTF-8")
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	root, err := rootElement(dec)
	if err != nil {
		return nil, validation.Field(Field, err.Error())
	}
	if root.Name.Space != atomNS || root.Name.Local != "feed" {
		return nil, validation.Field(Field, fmt.Sprintf("not an Atom feed: the root element is <%s>", root.Name.Local))
	}

	var entries []entry
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, validation.Field(Field, "not XML: the feed is not closed (truncated?)")
		}
		if err != nil {
			return nil, validation.Field(Field, "not XML: "+xmlProblem(err))
		}
		if end, ok := tok.(xml.EndElement); ok && end.Name == root.Name {
			break
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != atomNS || start.Name.Local != "entry" {
			if err := dec.Skip(); err != nil {
				return nil, validation.Field(Field, "not XML: "+xmlProblem(err))
			}
			continue
		}
		if len(entries) == MaxEntries {
			return nil, validation.Field(Field, fmt.Sprintf("more than %d entries", MaxEntries))
		}
		var e entry
		if err := dec.DecodeElement(&e, &start); err != nil {
			return nil, validation.Field(Field, fmt.Sprintf("entry %d: not XML: %s", len(entries), xmlProblem(err)))
		}
		entries = append(entries, e)
	}
	if err := trailing(dec); err != nil {
		return nil, validation.Field(Field, err.Error())
	}

	batch := paper.NewBatch(Field, maxProblems)
	for i, e := range entries {
		if isAPIError(e.ID) {
			return nil, validation.Field(Field, "the arXiv API answered with an error: "+quote(paper.CleanText(e.Summary)))
		}
		p, err := e.toPaper(now)
		batch.Add(i, p, err)
	}
	return batch.Papers()
}

// rootElement returns the document's root element, skipping the XML
// declaration, comments and white space; a DOCTYPE is refused.
func rootElement(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return xml.StartElement{}, errors.New("not XML: the document is empty")
		}
		if err != nil {
			return xml.StartElement{}, errors.New("not XML: " + xmlProblem(err))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.Directive:
			return xml.StartElement{}, errors.New("a DOCTYPE or other directive is not allowed")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, errors.New("not XML: text before the root element")
			}
		}
	}
}

// trailing checks that only white space, comments and processing
// instructions follow the root element.
func trailing(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errors.New("not XML after the feed: " + xmlProblem(err))
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("unexpected data after the feed")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return errors.New("unexpected data after the feed")
		}
	}
}

// xmlProblem describes a decoding error without echoing the document.
func xmlProblem(err error) string {
	var syntaxErr *xml.SyntaxError
	switch {
	case errors.As(err, &syntaxErr) && strings.Contains(syntaxErr.Msg, "unexpected EOF"):
		return "unexpected end of document (truncated?)"
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error on line %d", syntaxErr.Line)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of document"
	}
	return "invalid XML"
}

// isAPIError reports whether an entry id is the arXiv API's error entry
// (http://arxiv.org/api/errors#…).
func isAPIError(id string) bool {
	return strings.Contains(strings.TrimSpace(id), "arxiv.org/api/errors")
}

// absID extracts the arXiv id from an abstract URL such as
// http://arxiv.org/abs/2606.13677v1.
func absID(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	if host := u.Hostname(); host != "arxiv.org" && !strings.HasSuffix(host, ".arxiv.org") {
		return "", false
	}
	rest, ok := strings.CutPrefix(u.Path, "/abs/")
	if !ok {
		return "", false
	}
	return paper.NormalizeID(rest)
}

func (e *entry) toPaper(now time.Time) (paper.Paper, error) {
	if strings.TrimSpace(e.ID) == "" {
		return paper.Paper{}, errors.New("id is missing")
	}
	id, ok := absID(e.ID)
	if !ok {
		return paper.Paper{}, fmt.Errorf("id %s is not an arXiv abstract URL", quote(e.ID))
	}
	p := paper.Paper{ID: id}
	p.Title = paper.CleanText(e.Title)
	switch n := utf8.RuneCountInString(p.Title); {
	case n == 0:
		return paper.Paper{}, fmt.Errorf("paper %s: title is empty", id)
	case n > paper.MaxTitleRunes:
		return paper.Paper{}, fmt.Errorf("paper %s: title is %d characters; the limit is %d", id, n, paper.MaxTitleRunes)
	}
	p.Summary = paper.CleanText(e.Summary)
	if n := utf8.RuneCountInString(p.Summary); n > paper.MaxSummaryRunes {
		return paper.Paper{}, fmt.Errorf("paper %s: summary is %d characters; the limit is %d", id, n, paper.MaxSummaryRunes)
	}
	for i, a := range e.Authors {
		name := paper.CleanText(a.Name)
		if n := utf8.RuneCountInString(name); n > paper.MaxAuthorRunes {
			return paper.Paper{}, fmt.Errorf("paper %s: author[%d] name is %d characters; the limit is %d", id, i, n, paper.MaxAuthorRunes)
		}
		if name != "" && len(p.Authors) < paper.MaxAuthors {
			p.Authors = append(p.Authors, name)
		}
	}
	if s := strings.TrimSpace(e.Published); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return paper.Paper{}, fmt.Errorf("paper %s: published %s is not an RFC 3339 time", id, quote(s))
		}
		if problem := paper.CheckTime(t, now); problem != "" || t.IsZero() {
			if problem == "" {
				problem = "is before 1991, when arXiv began"
			}
			return paper.Paper{}, fmt.Errorf("paper %s: published %s %s", id, quote(s), problem)
		}
		p.PublishTime = t.UTC()
	}
	p.GitHubRepo, p.ProjectPage = commentLinks(e.Comment)
	return p, nil
}

var (
	githubRepo = regexp.MustCompile(`https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+`)
	projectURL = regexp.MustCompile(`(?i)project\s*page\s*(?:at|:)?\s*(https://[^\s,;()<>"]+)`)
)

// commentLinks picks the code repository and project page out of the
// author's free-text comment ("Project page: https://…", "Code at
// https://github.com/…"), when there are any.
func commentLinks(comment string) (repo, project string) {
	if len(comment) > 4000 {
		return "", ""
	}
	if m := githubRepo.FindString(comment); m != "" && len(m) <= paper.MaxURLBytes {
		repo = strings.TrimRight(strings.TrimSuffix(m, ".git"), ".")
	}
	if m := projectURL.FindStringSubmatch(comment); m != nil && len(m[1]) <= paper.MaxURLBytes {
		if u, err := url.Parse(strings.TrimRight(m[1], ".")); err == nil && u.Host != "" && u.User == nil {
			project = u.String()
		}
	}
	return repo, project
}

// quote quotes untrusted text for an error message, cut to a readable
// length.
func quote(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
