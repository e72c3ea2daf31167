// Package pages serves the subscriber's web pages: the embeddable sign-up
// form (/subscribe), and the pages behind the links in paperroute's mails
// (/confirm, /preferences, /unsubscribe). docs/pages.md describes them.
//
// A GET only ever shows a page; only a POST changes anything, because mail
// scanners and link previews fetch every link in a mail. The pages are
// server-rendered HTML forms with no external assets that work without
// JavaScript (the sign-up form's one inline script only preselects the
// reader's time zone). Link tokens travel in the URL or the form, so the
// buttons work without cookies.
//
// CSRF: every POST but the RFC 8058 one-click passes net/http's
// CrossOriginProtection (a browser's cross-site POST is refused), and the
// form pages (/subscribe, /preferences) also require a signed form token of
// a form this service served recently (formtoken.go). /confirm and
// /unsubscribe are authorised by the secret link token itself.
//
// POST /unsubscribe with the form field List-Unsubscribe=One-Click is the
// RFC 8058 one-click unsubscribe a mail client sends for the
// List-Unsubscribe-Post header: it needs no cookie or CSRF token (the signed
// token in the URL is the authorisation), answers 200 with a tiny body and
// never redirects, and is idempotent.
package pages

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// MaxBodyBytes bounds a POST body; the largest form (preferences with every
// topic and keyword) needs a few KiB.
const MaxBodyBytes = 16 << 10

// Service is the part of subscription.Service the pages use.
type Service interface {
	Topics(ctx context.Context) ([]subscription.Topic, error)
	Subscribe(ctx context.Context, req subscription.SubscribeRequest) error
	CheckConfirmLink(ctx context.Context, token string) (subscription.Subscriber, error)
	Confirm(ctx context.Context, token string, client subscription.Client) (subscription.Subscriber, error)
	CheckUnsubscribeLink(ctx context.Context, token string) (subscription.Subscriber, error)
	Unsubscribe(ctx context.Context, token string, channel subscription.Channel) (subscription.Subscriber, error)
	GetPreferences(ctx context.Context, token string) (subscription.Subscriber, error)
	UpdatePreferences(ctx context.Context, token string, u subscription.PreferencesUpdate) (subscription.Subscriber, error)
}

// Consent is the consent text the sign-up form shows and the version a
// sign-up records. Change Version whenever Text changes.
type Consent struct {
	Version string
	Text    string
}

// DefaultConsent is the consent shown unless Options say otherwise.
var DefaultConsent = Consent{
	Version: "2026-06-v1",
	Text: "I want the paperroute digest of trending research papers by email, " +
		"as chosen above. I can unsubscribe at any time with the link in every mail.",
}

// Options configure a Handler; the zero value works.
type Options struct {
	// FormSecret keys the form tokens. Every replica must use the same
	// secret (the service derives it from its first link-token key); empty
	// means a random key, which only works with a single replica.
	FormSecret []byte
	// Consent is the consent text and version; zero means DefaultConsent.
	Consent Consent
	// DefaultTimezone is preselected when the browser does not say (no
	// JavaScript); empty means UTC.
	DefaultTimezone string
	// DefaultHour is the preselected local delivery hour; nil means 7.
	DefaultHour *int
	// ClientIP is the reader's address for a request (rate limits and
	// consent evidence), e.g. service.Server.ClientIP, which believes the
	// configured trusted proxies; nil means the connection's address.
	ClientIP func(*http.Request) netip.Addr
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the pages.
type Handler struct {
	svc         Service
	log         *slog.Logger
	tmpl        *template.Template
	formKey     []byte
	consent     Consent
	defaultTZ   string
	defaultHour int
	now         func() time.Time
	clientIP    func(*http.Request) netip.Addr
	cop         *http.CrossOriginProtection
}

//go:embed templates/*.html
var templateFS embed.FS

// New returns a Handler.
func New(svc Service, log *slog.Logger, opts Options) (*Handler, error) {
	tmpl, err := template.New("pages").ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("pages: parse templates: %w", err)
	}
	h := &Handler{
		svc:         svc,
		log:         log,
		tmpl:        tmpl,
		formKey:     formKey(opts.FormSecret),
		consent:     opts.Consent,
		defaultTZ:   opts.DefaultTimezone,
		defaultHour: 7,
		now:         opts.Now,
		clientIP:    opts.ClientIP,
		cop:         http.NewCrossOriginProtection(),
	}
	if h.consent == (Consent{}) {
		h.consent = DefaultConsent
	}
	if h.defaultTZ == "" {
		h.defaultTZ = "UTC"
	}
	if opts.DefaultHour != nil {
		h.defaultHour = *opts.DefaultHour
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.clientIP == nil {
		h.clientIP = remoteIP
	}
	return h, nil
}

// Register adds the pages to mux. Other methods on these paths get 405 from
// the mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /subscribe", h.showSubscribe)
	mux.HandleFunc("POST /subscribe", h.subscribe)
	mux.HandleFunc("GET /confirm", h.showConfirm)
	mux.HandleFunc("POST /confirm", h.confirm)
	mux.HandleFunc("GET /preferences", h.showPreferences)
	mux.HandleFunc("POST /preferences", h.updatePreferences)
	mux.HandleFunc("GET /unsubscribe", h.showUnsubscribe)
	mux.HandleFunc("POST /unsubscribe", h.unsubscribe)
}

// The Content-Security-Policy of every page but the sign-up form.
const defaultCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// SecurityHeaders sets the headers every response of the service's HTTP
// side carries: nothing may be loaded, framed or cached, and no Referer
// (which would carry the token) is sent onwards. The sign-up form alone
// relaxes framing (see embedHeaders).
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", defaultCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// page is the data of every page template.
type page struct {
	Embed   bool // no page margins: the sign-up form's pages in an <iframe>
	Title   string
	Message string
	Email   string
	Token   string
}

// rejectCrossSite answers a POST a browser sent from another site with 403
// and reports whether it did.
func (h *Handler) rejectCrossSite(w http.ResponseWriter, r *http.Request) bool {
	if err := h.cop.Check(r); err != nil {
		h.render(w, http.StatusForbidden, "message", page{
			Title:   "Request refused",
			Message: "This form can only be sent from paperroute's own pages. Open the page again and use its button.",
		})
		return true
	}
	return false
}

// readForm reads a bounded POST body as a URL-encoded (or, as some mail
// clients send for one-click, multipart) form. On failure it has answered.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.render(w, http.StatusRequestEntityTooLarge, "message", page{Title: "Request too large", Message: "The form sent was too large."})
		return nil, false
	}
	if err != nil {
		h.render(w, http.StatusBadRequest, "message", page{Title: "Bad request", Message: "The form could not be read."})
		return nil, false
	}
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "multipart/form-data" && params["boundary"] != "" {
		mf, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(MaxBodyBytes)
		if err != nil {
			h.render(w, http.StatusBadRequest, "message", page{Title: "Bad request", Message: "The form could not be read."})
			return nil, false
		}
		defer func() { _ = mf.RemoveAll() }()
		return url.Values(mf.Value), true
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		h.render(w, http.StatusBadRequest, "message", page{Title: "Bad request", Message: "The form could not be read."})
		return nil, false
	}
	return form, true
}

// clientOf is the consent evidence of a page request: the reader's address
// as Options.ClientIP reports it, and their user agent.
func (h *Handler) clientOf(r *http.Request) subscription.Client {
	var ip string
	if a := h.clientIP(r); a.IsValid() {
		ip = a.Unmap().WithZone("").String()
	}
	return subscription.Client{IP: ip, UserAgent: cleanUserAgent(r.UserAgent())}
}

// remoteIP is the TCP peer's address. A link-local peer's zone ("%eth0")
// names our interface, not the reader; clientOf drops it.
func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// cleanUserAgent makes any browser's user agent acceptable evidence: valid
// UTF-8, no control characters, at most MaxUserAgentLength bytes.
func cleanUserAgent(ua string) string {
	ua = cleanText(ua)
	for len(ua) > subscription.MaxUserAgentLength {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}

// cleanText is s as valid UTF-8 without control characters, for showing
// back what a reader typed.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
