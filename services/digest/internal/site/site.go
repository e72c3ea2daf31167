// Package site serves paperroute's public web pages on the digest service's
// HTTP port: the front page with today's trending papers and a Subscribe
// box (/), the web archive of editions (/editions, /editions/YYYY-MM-DD,
// /editions/YYYY-Www) and the Atom feed of editions (/feed.atom).
//
// Every page is server-rendered and complete without JavaScript. The one
// script, the ES module /static/subscribe.js, turns the Subscribe box into a
// form that calls the subscriber's Subscribe RPC over the Connect protocol
// (JSON) and shows its field violations next to the fields; without
// JavaScript the box is the subscriber's own sign-up form (/subscribe) in an
// <iframe>, with a link to it. No asset comes from another site.
package site

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/archive"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Sizes of the pages.
const (
	// FrontPagePapers is how many papers the front page lists.
	FrontPagePapers = 30
	// FeedEntries is how many editions the feed carries.
	FeedEntries = 30
	// ArchiveListed is how many editions /editions lists.
	ArchiveListed = 400
	// shownAuthors is how many author names a card shows before "et al.".
	shownAuthors = 8
	// summaryRunes is how much of an abstract a card shows.
	summaryRunes = 900
)

// Consent is the consent text the Subscribe box shows and the version the
// sign-up records (SubscribeRequest.consent_text_version). Change Version
// whenever Text changes.
type Consent struct {
	Version string
	Text    string
}

// DefaultConsent is the front page's consent text.
var DefaultConsent = Consent{
	Version: "front-2026-11-v1",
	Text: "I want the paperroute digest of trending research papers by email, as chosen above. " +
		"I can unsubscribe at any time with the link in every mail.",
}

// Trending is the part of the digest service the pages read
// (digest.Service).
type Trending interface {
	archive.Trending
	Topics() []ranking.Topic
}

// Config is what the pages need.
type Config struct {
	// Trending and Archive are required.
	Trending Trending
	Archive  archive.Store
	// PublicURL is where readers reach these pages (DIGEST_PUBLIC_URL), for
	// the feed's ids and absolute links. Required.
	PublicURL string
	// SubscriberURL is the subscriber service's public URL
	// (DIGEST_SUBSCRIBER_URL): the Subscribe box calls
	// <SubscriberURL>/paperroute.subscriber.v1.SubscriberService/Subscribe
	// over Connect and falls back to <SubscriberURL>/subscribe. Required.
	SubscriberURL string
	// Consent is the Subscribe box's consent text; zero means
	// DefaultConsent.
	Consent Consent
	// Logger logs failures of a page's backing calls. Required.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the pages.
type Handler struct {
	cfg        Config
	tmpl       *template.Template
	static     http.Handler
	subOrigin  string
	csp        string
	publicBase *url.URL
}

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Trending == nil || cfg.Archive == nil || cfg.Logger == nil {
		return nil, errors.New("site: Config.Trending, Archive and Logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Consent == (Consent{}) {
		cfg.Consent = DefaultConsent
	}
	pub, err := baseURL("public URL", cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	sub, err := baseURL("subscriber URL", cfg.SubscriberURL)
	if err != nil {
		return nil, err
	}
	cfg.PublicURL, cfg.SubscriberURL = strings.TrimSuffix(pub.String(), "/"), strings.TrimSuffix(sub.String(), "/")
	tmpl, err := template.New("site").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	origin := sub.Scheme + "://" + sub.Host
	return &Handler{
		cfg:        cfg,
		tmpl:       tmpl,
		static:     http.StripPrefix("/static/", http.FileServerFS(static)),
		subOrigin:  origin,
		publicBase: pub,
		// Nothing but this site's own script and style, calls and forms to
		// the subscriber, and the subscriber's form in a frame.
		csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " + origin +
			"; frame-src " + origin + "; form-action 'self' " + origin + "; frame-ancestors 'none'; base-uri 'none'",
	}, nil
}

// baseURL checks a configured http(s) URL without query or fragment.
func baseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("site: the %s %q must be an http(s) URL without query, fragment or credentials", what, raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// Register adds the pages to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", h.front)
	mux.HandleFunc("GET /editions", h.editions)
	mux.HandleFunc("GET /editions/{id}", h.edition)
	mux.HandleFunc("GET /feed.atom", h.feed)
	mux.Handle("GET /static/", h.staticFiles())
}

// SubscribeEndpoint is the Connect URL of the Subscribe RPC the box calls.
func (h *Handler) SubscribeEndpoint() string {
	return h.cfg.SubscriberURL + "/paperroute.subscriber.v1.SubscriberService/Subscribe"
}

func (h *Handler) staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.static.ServeHTTP(w, r)
	})
}

// render writes a page with the site's security headers.
func (h *Handler) render(ctx context.Context, w http.ResponseWriter, code int, name string, data any) {
	var b strings.Builder
	if err := h.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		h.cfg.Logger.ErrorContext(ctx, "site: render "+name, "err", err)
		http.Error(w, "Something went wrong. Please try again in a moment.", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// problem renders a page that only says what went wrong.
func (h *Handler) problem(ctx context.Context, w http.ResponseWriter, code int, title, message string) {
	h.render(ctx, w, code, "problem.html", problemPage{Layout: h.frame(title), Message: message})
}

// rankingTopic is a catalogue topic.
type rankingTopic = ranking.Topic

// arxivID matches the ids that have an arXiv abstract page.
var arxivID = regexp.MustCompile(`^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})$`)
