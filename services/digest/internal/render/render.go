// Package render turns an edition's papers into the digest mail: a subject,
// an HTML body (html/template: paper text is untrusted) and a hand-written
// plain-text body.
//
// The result is a sender template shared by every recipient of the same
// paper list: the only per-recipient parts are the unsubscribe and manage
// links, written as the sender variables {{unsubscribe_url}} and
// {{manage_url}}. Paper text can never form a variable: every brace from a
// paper is rendered as a character reference (&#123;) in HTML, and every
// "{{" in the subject and the text body gets the sender template engine's
// escape, a backslash ("\{{"), so it shows exactly as written.
package render

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// UnsubscribeVar and ManageVar are the sender variables the footer links
// are written as; the sender fills them per recipient.
const (
	UnsubscribeVar = "{{" + digest.VarUnsubscribeURL + "}}"
	ManageVar      = "{{" + digest.VarManageURL + "}}"
)

// MaxHTMLBytes is the budget for the HTML body: Gmail clips messages over
// 102 KB and hides what follows, which would be the unsubscribe link.
const MaxHTMLBytes = 100 * 1024

// Display limits: long fields are cut for the mail (the paper page has the
// rest), which also keeps ten worst-case papers under MaxHTMLBytes.
const (
	maxTitleRunes          = 300
	maxSubjectTitleRunes   = 60
	maxPreheaderTitleRunes = 90
	maxAbstractRunes       = 300
	maxAuthorRunes         = 100
	shownAuthors           = 5
	textWidth              = 72
)

// unsubscribeSentinel stands in for UnsubscribeVar while html/template
// renders: it would percent-encode the braces in an href. It is replaced
// only where it is a whole href attribute value, which paper text (escaped
// by html/template) can never produce; a paper link that is the sentinel
// is dropped.
const (
	unsubscribeSentinel = "https://unsubscribe.paperroute.invalid/"
	manageSentinel      = "https://manage.paperroute.invalid/"
)

// ErrNoPapers is returned for an edition without papers: there is nothing
// to mail.
var ErrNoPapers = errors.New("render: the edition has no papers")

//go:embed templates/digest.html.tmpl
var templates embed.FS

// Renderer renders digests; it implements digest.Renderer. It is safe for
// concurrent use.
type Renderer struct {
	postalAddress string
	archiveURL    string
	html          *template.Template
}

// Option changes a Renderer.
type Option func(*Renderer)

// WithArchiveURL adds a "View in browser" link to every digest: the public
// edition of the mail's date (or ISO week) in the web archive at
// base/editions/… (base is the digest's DIGEST_PUBLIC_URL). The page is the
// public trending digest of that day, the same for everyone: the link
// carries nothing of the reader.
func WithArchiveURL(base string) Option {
	return func(r *Renderer) { r.archiveURL = strings.TrimSuffix(base, "/") }
}

// New returns a Renderer whose footers show postalAddress (the sender's
// physical address, which bulk mail must carry).
func New(postalAddress string, opts ...Option) (*Renderer, error) {
	postalAddress = paper.CleanText(postalAddress)
	if postalAddress == "" {
		return nil, errors.New("render: a postal address is required")
	}
	t, err := template.ParseFS(templates, "templates/digest.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("render: parse template: %w", err)
	}
	r := &Renderer{postalAddress: postalAddress, html: t}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// page is the data of the HTML template.
type page struct {
	Subject        string
	Preheader      string
	Date           string
	Heading        string
	Sections       []section
	Reason         string
	UnsubscribeURL string
	ManageURL      string
	PostalAddress  string
	// ViewURL is the public edition's page, or empty.
	ViewURL string
}

// section is a titled run of cards ("For you", "Also trending"); the one
// section of a pure-trending digest has no title.
type section struct {
	Title string
	Cards []card
}

// card is one paper as the mail shows it.
type card struct {
	Title    string
	URL      string
	ArxivURL string
	Authors  string
	Why      string
	Repo     string
	Abstract string
}

const reason = "You get this mail because you subscribed to the paperroute digest of trending research papers. One click on the first link below stops it; the second changes your topics, keywords and delivery time."

// Render renders the digest of ed. If the HTML of all the papers would
// exceed MaxHTMLBytes (only possible with many papers of extreme length),
// papers are dropped from the end until it fits: a clipped mail would hide
// the unsubscribe link. Message.Papers says how many were rendered.
func (r *Renderer) Render(ed digest.Edition) (digest.Rendered, error) {
	if len(ed.Cards) == 0 {
		return digest.Rendered{}, ErrNoPapers
	}
	for n := len(ed.Cards); n > 0; n-- {
		msg, err := r.render(ed, ed.Cards[:n])
		if err != nil {
			return digest.Rendered{}, err
		}
		if len(msg.HTML) <= MaxHTMLBytes {
			return msg, nil
		}
	}
	// One paper, every field at its bound, renders to a few KB.
	return digest.Rendered{}, fmt.Errorf("render: even one paper exceeds the %d byte budget", MaxHTMLBytes)
}

func (r *Renderer) render(ed digest.Edition, cards []digest.Card) (digest.Rendered, error) {
	top := cards[0].Paper.Title
	p := page{
		Subject:        subjectPrefix(ed) + " · " + ed.Date.Format("Mon 2 Jan") + " · " + cut(top, maxSubjectTitleRunes),
		Date:           ed.Date.Format("Monday 2 January 2006"),
		Heading:        heading(ed),
		Reason:         reason,
		UnsubscribeURL: unsubscribeSentinel,
		ManageURL:      manageSentinel,
		PostalAddress:  r.postalAddress,
	}
	if r.archiveURL != "" {
		p.ViewURL = r.archiveURL + "/editions/" + editionID(ed)
	}
	p.Preheader = "Top: " + cut(top, maxPreheaderTitleRunes)
	if n := len(cards) - 1; n > 0 {
		p.Preheader += fmt.Sprintf(" and %d more %s", n, plural(n, "paper", "papers"))
	}
	forYou := section{Title: "For you"}
	trending := section{}
	for _, c := range cards {
		pp := c.Paper
		repo := pp.GitHubRepo
		if strings.HasPrefix(repo, unsubscribeSentinel) || strings.HasPrefix(repo, manageSentinel) {
			repo = "" // it would become the reader's unsubscribe or manage link
		}
		cd := card{
			Title:    cut(pp.Title, maxTitleRunes),
			URL:      pp.URL(),
			ArxivURL: "https://arxiv.org/abs/" + pp.ID,
			Authors:  authors(pp.Authors),
			Why:      c.Why,
			Repo:     repo,
			Abstract: abstract(pp),
		}
		if c.ForYou {
			forYou.Cards = append(forYou.Cards, cd)
		} else {
			trending.Cards = append(trending.Cards, cd)
		}
	}
	if len(forYou.Cards) > 0 {
		p.Sections = append(p.Sections, forYou)
		trending.Title = "Also trending"
	}
	if len(trending.Cards) > 0 {
		p.Sections = append(p.Sections, trending)
	}
	var buf bytes.Buffer
	if err := r.html.Execute(&buf, p); err != nil {
		return digest.Rendered{}, fmt.Errorf("render: html: %w", err)
	}
	return digest.Rendered{
		Subject: escapeTemplate(p.Subject),
		HTML:    neutraliseHTML(buf.String()),
		Text:    r.text(p),
		Cards:   len(cards),
	}, nil
}

// editionID is the web archive's id of ed's public edition: its date, or
// its ISO week for a weekly digest.
func editionID(ed digest.Edition) string {
	if ed.Weekly {
		y, w := ed.Date.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	}
	return ed.Date.Format(time.DateOnly)
}

func subjectPrefix(ed digest.Edition) string {
	if ed.Weekly {
		return "Trending papers of the week"
	}
	return "Trending papers"
}

func heading(ed digest.Edition) string {
	if ed.Weekly {
		return "This week's trending papers"
	}
	return "Today's trending papers"
}

// neutraliseHTML writes every brace as a character reference, so no paper
// text can read as a sender variable, then puts the real variable into the
// unsubscribe hrefs.
func neutraliseHTML(s string) string {
	return strings.NewReplacer(
		"{", "&#123;",
		"}", "&#125;",
		`href="`+unsubscribeSentinel+`"`, `href="`+UnsubscribeVar+`"`,
		`href="`+manageSentinel+`"`, `href="`+ManageVar+`"`,
	).Replace(s)
}

// text renders the plain-text body by hand: text/template would add
// nothing but another way to get whitespace wrong.
func (r *Renderer) text(p page) string {
	var b strings.Builder
	b.WriteString("paperroute · " + p.Date + "\n")
	b.WriteString(p.Heading + "\n")
	if p.ViewURL != "" {
		b.WriteString("View in your browser: " + p.ViewURL + "\n")
	}
	n := 0
	for _, sec := range p.Sections {
		if sec.Title != "" {
			b.WriteString("\n== " + sec.Title + " ==\n")
		}
		for _, c := range sec.Cards {
			n++
			b.WriteString("\n")
			indent := strings.Repeat(" ", len(strconv.Itoa(n))+2)
			writeWrapped(&b, strconv.Itoa(n)+". ", indent, c.Title)
			b.WriteString(indent + c.URL + "\n")
			if c.Authors != "" {
				writeWrapped(&b, indent, indent, c.Authors)
			}
			writeWrapped(&b, indent, indent, c.Why)
			b.WriteString(indent + "arXiv: " + c.ArxivURL + "\n")
			if c.Repo != "" {
				writeWrapped(&b, indent, indent, "Code: "+c.Repo)
			}
			if c.Abstract != "" {
				b.WriteString("\n")
				writeWrapped(&b, indent, indent, c.Abstract)
			}
		}
	}
	b.WriteString("\n-- \n")
	writeWrapped(&b, "", "", p.Reason)
	b.WriteString("Unsubscribe: " + UnsubscribeVar + "\n")
	b.WriteString("Manage preferences: " + ManageVar + "\n")
	writeWrapped(&b, "", "", p.PostalAddress)
	return b.String()
}

// writeWrapped writes s (untrusted) word-wrapped at textWidth, the first
// line after first and the others after indent.
func writeWrapped(b *strings.Builder, first, indent, s string) {
	s = escapeTemplate(s)
	prefix, width := first, utf8.RuneCountInString(first)
	line := 0
	// Split at plain spaces only: a no-break space (as in "et al.") holds
	// its words together. Paper text reaches here without either kind of
	// unusual whitespace (paper.CleanText).
	for _, word := range strings.Split(s, " ") {
		if word == "" {
			continue
		}
		n := utf8.RuneCountInString(word)
		if line > 0 && width+1+n > textWidth {
			b.WriteString("\n")
			prefix, width, line = indent, utf8.RuneCountInString(indent), 0
		}
		if line == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteByte(' ')
			width++
		}
		b.WriteString(word)
		width += n
		line++
	}
	b.WriteString("\n")
}

// authors lists the first few names, each cut to a sane length.
func authors(names []string) string {
	shown := names
	if len(shown) > shownAuthors {
		shown = shown[:shownAuthors]
	}
	parts := make([]string, len(shown))
	for i, n := range shown {
		parts[i] = cut(n, maxAuthorRunes)
	}
	s := strings.Join(parts, ", ")
	if len(names) > shownAuthors {
		s += " et\u00a0al."
	}
	return s
}

// abstract is the machine summary when there is one, else the start of the
// abstract.
func abstract(p paper.Paper) string {
	if p.AISummary != "" {
		return cut(p.AISummary, maxAbstractRunes)
	}
	return cut(p.Summary, maxAbstractRunes)
}

// cut shortens s to at most max runes, at a word boundary when there is one
// in the second half, and marks the cut with "…".
func cut(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	// Look one rune past the room left for the ellipsis: a space there
	// means the last word fits whole.
	r := []rune(s)[:max]
	if i := lastSpace(r); i > len(r)/2 {
		r = r[:i]
	} else {
		r = r[:max-1]
	}
	t := strings.TrimRightFunc(string(r), func(c rune) bool {
		return unicode.IsSpace(c) || strings.ContainsRune(",;:-–—(", c)
	})
	return t + "…"
}

func lastSpace(r []rune) int {
	for i := len(r) - 1; i >= 0; i-- {
		if unicode.IsSpace(r[i]) {
			return i
		}
	}
	return -1
}

// escapeTemplate writes untrusted text for the sender's template engine
// (services/sender/internal/mailtemplate): a backslash before every "{{",
// so the text shows exactly as written and never reads as a variable.
func escapeTemplate(s string) string {
	return strings.ReplaceAll(s, "{{", `\{{`)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
