package site

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/services/digest/internal/archive"
)

// Layout is what the frame of every page shows.
type Layout struct {
	Title   string
	FeedURL string
}

func (h *Handler) frame(title string) Layout {
	return Layout{Title: title, FeedURL: h.cfg.PublicURL + "/feed.atom"}
}

type problemPage struct {
	Layout
	Message string
}

// chip is one topic filter link.
type chip struct {
	Label, Href string
	Current     bool
}

// card is one paper as a page shows it.
type card struct {
	archive.Card
	Rank      int
	ByLine    string
	Abstract  string
	Truncated bool
	ArxivURL  string
}

// boxTopic is one topic checkbox of the Subscribe box.
type boxTopic struct {
	ID, Label string
	Checked   bool
}

// subscribeBox is the Subscribe box.
type subscribeBox struct {
	Endpoint    string
	FallbackURL string
	Consent     Consent
	Topics      []boxTopic
	Hours       []int
	DefaultHour int
}

type frontPage struct {
	Layout
	Today  string
	Window string
	Topic  string
	Chips  []chip
	Cards  []card
	Box    subscribeBox
}

type editionPage struct {
	Layout
	Heading string
	Updated string
	Cards   []card
	Kind    string
}

type archivePage struct {
	Layout
	Daily, Weekly []archiveLink
}

type archiveLink struct {
	Href, Label string
}

// defaultHour is the delivery hour the Subscribe box suggests.
const defaultHour = 7

func (h *Handler) front(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	topics := h.cfg.Trending.Topics()
	chosen := r.URL.Query()["topic"]
	if len(chosen) > 1 {
		chosen = chosen[:1] // the chips choose one; the first wins
	}
	label := ""
	for _, id := range chosen {
		i := slices.IndexFunc(topics, func(t rankingTopic) bool { return t.ID == id })
		if i < 0 {
			h.problem(ctx, w, http.StatusNotFound, "No such topic",
				"There is no topic by that name. The front page lists every topic as a link.")
			return
		}
		label = topics[i].Label
	}
	picks, _, err := h.cfg.Trending.Trending(ctx, 0, FrontPagePapers, chosen)
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "site: front page trending", "err", err)
		h.problem(ctx, w, http.StatusServiceUnavailable, "Please try again shortly", "Today's trending papers cannot be shown right now.")
		return
	}
	p := frontPage{
		Layout: h.frame("Trending papers"),
		Today:  h.cfg.Now().UTC().Format("Monday 2 January 2006"),
		Topic:  label,
		Chips:  []chip{{Label: "All topics", Href: "/", Current: len(chosen) == 0}},
		Cards:  cards(archive.Cards(picks)),
		Box: subscribeBox{
			Endpoint: h.SubscribeEndpoint(), FallbackURL: h.cfg.SubscriberURL + "/subscribe",
			Consent: h.cfg.Consent, DefaultHour: defaultHour,
		},
	}
	for i := range 24 {
		p.Box.Hours = append(p.Box.Hours, i)
	}
	for _, t := range topics {
		current := len(chosen) == 1 && chosen[0] == t.ID
		p.Chips = append(p.Chips, chip{Label: t.Label, Href: "/?topic=" + url.QueryEscape(t.ID), Current: current})
		p.Box.Topics = append(p.Box.Topics, boxTopic{ID: t.ID, Label: t.Label, Checked: current})
	}
	h.render(ctx, w, http.StatusOK, "front.html", p)
}

func (h *Handler) edition(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	weekly, err := archive.ParseID(id)
	if err != nil {
		h.problem(ctx, w, http.StatusNotFound, "No such edition",
			"Editions are at /editions/YYYY-MM-DD (daily) and /editions/YYYY-Www (weekly, ISO week).")
		return
	}
	e, err := h.cfg.Archive.GetEdition(ctx, id)
	if errors.Is(err, archive.ErrNotFound) && h.current(id, weekly) {
		// A mail's "view in browser" link names the reader's local date,
		// which may be a UTC day whose edition is not recorded yet: show
		// what it will hold, today's list.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	if errors.Is(err, archive.ErrNotFound) {
		h.problem(ctx, w, http.StatusNotFound, "No edition for "+id,
			"There is no edition for that day or week: paperroute was not running then, or it is still to come.")
		return
	}
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "site: edition", "id", id, "err", err)
		h.problem(ctx, w, http.StatusServiceUnavailable, "Please try again shortly", "The edition cannot be shown right now.")
		return
	}
	heading, kind := editionTitle(id, weekly), "daily"
	if weekly {
		kind = "weekly"
	}
	h.render(ctx, w, http.StatusOK, "edition.html", editionPage{
		Layout: h.frame(heading), Heading: heading, Kind: kind,
		Updated: e.Updated.UTC().Format("2 January 2006, 15:04 UTC"), Cards: cards(e.Cards),
	})
}

func (h *Handler) editions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	refs, err := h.cfg.Archive.ListEditions(ctx, ArchiveListed)
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "site: archive", "err", err)
		h.problem(ctx, w, http.StatusServiceUnavailable, "Please try again shortly", "The archive cannot be shown right now.")
		return
	}
	p := archivePage{Layout: h.frame("Archive of editions")}
	for _, ref := range refs {
		l := archiveLink{Href: "/editions/" + ref.ID, Label: editionTitle(ref.ID, ref.Weekly)}
		if ref.Weekly {
			p.Weekly = append(p.Weekly, l)
		} else {
			p.Daily = append(p.Daily, l)
		}
	}
	h.render(ctx, w, http.StatusOK, "archive.html", p)
}

// current reports whether edition id is today's or tomorrow's (UTC), or
// this or next week's: one that may still be recorded.
func (h *Handler) current(id string, weekly bool) bool {
	now := h.cfg.Now().UTC()
	if weekly {
		return id == archive.WeeklyID(now) || id == archive.WeeklyID(now.AddDate(0, 0, 7))
	}
	return id == archive.DailyID(now) || id == archive.DailyID(now.AddDate(0, 0, 1))
}

// editionTitle names an edition for readers.
func editionTitle(id string, weekly bool) string {
	if !weekly {
		d, err := time.Parse(time.DateOnly, id)
		if err != nil {
			return "Trending papers of " + id
		}
		return "Trending papers of " + d.Format("Monday 2 January 2006")
	}
	start, err := archive.WeekStart(id)
	if err != nil {
		return "Trending papers of week " + id
	}
	end := start.AddDate(0, 0, 6)
	y, w := start.ISOWeek()
	return fmt.Sprintf("Trending papers of week %d, %d (%s – %s)", w, y, start.Format("2 Jan"), end.Format("2 Jan 2006"))
}

// cards prepares edition cards for a page.
func cards(in []archive.Card) []card {
	out := make([]card, len(in))
	for i, c := range in {
		by := strings.Join(c.Authors[:min(len(c.Authors), shownAuthors)], ", ")
		if len(c.Authors) > shownAuthors {
			by += fmt.Sprintf(" and %d more", len(c.Authors)-shownAuthors)
		}
		abstract, cut := truncate(c.Summary, summaryRunes)
		out[i] = card{Card: c, Rank: i + 1, ByLine: by, Abstract: abstract, Truncated: cut}
		if arxivID.MatchString(c.ID) {
			out[i].ArxivURL = "https://arxiv.org/abs/" + c.ID
		}
	}
	return out
}

// truncate cuts s to at most n runes at a word boundary.
func truncate(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	r := []rune(s)[:n]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:.") + "…", true
}

var funcs = template.FuncMap{}
