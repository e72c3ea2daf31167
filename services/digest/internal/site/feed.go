package site

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"time"
)

// The Atom feed (RFC 4287): one entry per edition, daily and weekly, most
// recently updated first. An entry's id is its edition's URL, which never
// changes; its updated time moves while the day (week) lasts and the
// edition still follows the ranking, then stays.

const atomNS = "http://www.w3.org/2005/Atom"

type atomFeed struct {
	XMLName xml.Name    `xml:"feed"`
	NS      string      `xml:"xmlns,attr"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Sub     string      `xml:"subtitle,omitempty"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
	URI  string `xml:"uri,omitempty"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr,omitempty"`
	Body string `xml:",chardata"`
}

type atomEntry struct {
	ID      string     `xml:"id"`
	Title   string     `xml:"title"`
	Updated string     `xml:"updated"`
	Links   []atomLink `xml:"link"`
	Summary atomText   `xml:"summary"`
	Content atomText   `xml:"content"`
}

func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	refs, err := h.cfg.Archive.ListEditions(ctx, FeedEntries)
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "site: feed", "err", err)
		http.Error(w, "The feed cannot be read right now.", http.StatusServiceUnavailable)
		return
	}
	base := h.cfg.PublicURL
	f := atomFeed{
		NS:     atomNS,
		ID:     base + "/feed.atom",
		Title:  "paperroute: trending research papers",
		Sub:    "Every edition of the public trending digest, daily and weekly.",
		Author: atomPerson{Name: "paperroute", URI: base + "/"},
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: base + "/feed.atom"},
			{Rel: "alternate", Type: "text/html", Href: base + "/"},
		},
	}
	var newest time.Time
	for _, ref := range refs {
		e, err := h.cfg.Archive.GetEdition(ctx, ref.ID)
		if err != nil {
			h.cfg.Logger.ErrorContext(ctx, "site: feed edition", "id", ref.ID, "err", err)
			http.Error(w, "The feed cannot be read right now.", http.StatusServiceUnavailable)
			return
		}
		var content bytes.Buffer
		if err := h.tmpl.ExecuteTemplate(&content, "feedentry.html", cards(e.Cards)); err != nil {
			h.cfg.Logger.ErrorContext(ctx, "site: feed entry", "id", ref.ID, "err", err)
			http.Error(w, "The feed cannot be read right now.", http.StatusInternalServerError)
			return
		}
		href := base + "/editions/" + e.ID
		summary := "No papers."
		if len(e.Cards) > 0 {
			summary = "Top paper: " + e.Cards[0].Title
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:      href,
			Title:   editionTitle(e.ID, e.Weekly),
			Updated: atomTime(e.Updated),
			Links:   []atomLink{{Rel: "alternate", Type: "text/html", Href: href}},
			Summary: atomText{Type: "text", Body: summary},
			Content: atomText{Type: "html", Body: content.String()},
		})
		if e.Updated.After(newest) {
			newest = e.Updated
		}
	}
	if newest.IsZero() {
		newest = time.Unix(0, 0) // an empty feed has never changed
	}
	f.Updated = atomTime(newest)
	out, err := xml.MarshalIndent(f, "", " ")
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "site: feed", "err", err)
		http.Error(w, "The feed cannot be read right now.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}
