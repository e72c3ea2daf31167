// Package pages serves the pages behind the links in paperroute's mails:
// /confirm and /unsubscribe.
//
// A GET only ever shows a page; only a POST changes anything, because mail
// scanners and link previews fetch every link in a mail. The pages are
// plain HTML forms (no JavaScript, no external assets) and the token travels
// in the form, so the button works without cookies.
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
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// MaxBodyBytes bounds a POST body; the forms need well under 1 KiB.
const MaxBodyBytes = 16 << 10

// Service is the part of subscription.Service the pages use.
type Service interface {
	CheckConfirmLink(ctx context.Context, token string) (subscription.Subscriber, error)
	Confirm(ctx context.Context, token string, client subscription.Client) (subscription.Subscriber, error)
	CheckUnsubscribeLink(ctx context.Context, token string) (subscription.Subscriber, error)
	Unsubscribe(ctx context.Context, token string, channel subscription.Channel) (subscription.Subscriber, error)
}

// Handler serves the link pages.
type Handler struct {
	svc  Service
	log  *slog.Logger
	tmpl *template.Template
}

// New returns a Handler.
func New(svc Service, log *slog.Logger) (*Handler, error) {
	tmpl, err := template.New("pages").Parse(pageTemplates)
	if err != nil {
		return nil, err
	}
	return &Handler{svc: svc, log: log, tmpl: tmpl}, nil
}

// Register adds the pages to mux. Other methods on these paths get 405 from
// the mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /confirm", h.showConfirm)
	mux.HandleFunc("POST /confirm", h.confirm)
	mux.HandleFunc("GET /unsubscribe", h.showUnsubscribe)
	mux.HandleFunc("POST /unsubscribe", h.unsubscribe)
}

// SecurityHeaders sets the headers every response of the service's HTTP
// side carries: nothing may be loaded, framed or cached, and no Referer
// (which would carry the token) is sent onwards.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// page is the data of every page template.
type page struct {
	Title   string
	Message string
	Email   string
	Token   string
}

func (h *Handler) showConfirm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	sub, err := h.svc.CheckConfirmLink(r.Context(), token)
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	switch sub.State {
	case subscription.StatePending:
		h.render(w, http.StatusOK, "confirm-form", page{Title: "Confirm your subscription", Email: sub.Email, Token: token})
	default:
		h.showState(w, sub)
	}
}

func (h *Handler) confirm(w http.ResponseWriter, r *http.Request) {
	form, ok := h.readForm(w, r)
	if !ok {
		return
	}
	token := form.Get("token")
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	sub, err := h.svc.Confirm(r.Context(), token, clientOf(r))
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	h.showState(w, sub)
}

func (h *Handler) showUnsubscribe(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	sub, err := h.svc.CheckUnsubscribeLink(r.Context(), token)
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	switch sub.State {
	case subscription.StatePending, subscription.StateActive:
		h.render(w, http.StatusOK, "unsubscribe-form", page{Title: "Unsubscribe", Email: sub.Email, Token: token})
	default:
		h.showState(w, sub)
	}
}

func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	form, ok := h.readForm(w, r)
	if !ok {
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" {
		token = form.Get("token")
	}
	if form.Get("List-Unsubscribe") == "One-Click" {
		h.oneClick(w, r, token)
		return
	}
	sub, err := h.svc.Unsubscribe(r.Context(), token, subscription.ChannelPage)
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	h.showState(w, sub)
}

// oneClick answers an RFC 8058 POST: plain text, 200, no redirect.
func (h *Handler) oneClick(w http.ResponseWriter, r *http.Request, token string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := h.svc.Unsubscribe(r.Context(), token, subscription.ChannelOneClick)
	var verr *validation.Error
	switch {
	case err == nil:
		_, _ = io.WriteString(w, "Unsubscribed.\n")
	case errors.As(err, &verr), errors.Is(err, subscription.ErrLinkExpired):
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "This unsubscribe link is not valid.\n")
	default:
		h.log.ErrorContext(r.Context(), "one-click unsubscribe failed", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "Something went wrong; please try again.\n")
	}
}

// showState shows the page for what the subscription now is.
func (h *Handler) showState(w http.ResponseWriter, sub subscription.Subscriber) {
	p := page{Email: sub.Email}
	switch sub.State {
	case subscription.StateActive:
		p.Title = "You're subscribed"
		p.Message = "The day's trending research papers will arrive in your inbox once a day. Every mail has a link to unsubscribe."
	case subscription.StateUnsubscribed:
		p.Title = "You're unsubscribed"
		p.Message = "This address will get no more mail from paperroute. To get the digest again, subscribe again."
	case subscription.StateSuppressed:
		p.Title = "No mail to this address"
		p.Message = "paperroute sends no mail to this address."
	default:
		p.Title = "Not confirmed yet"
		p.Message = "This subscription has not been confirmed yet: use the link in the confirmation mail."
	}
	h.render(w, http.StatusOK, "message", p)
}

// linkError shows why a link did not work.
func (h *Handler) linkError(w http.ResponseWriter, r *http.Request, err error) {
	var verr *validation.Error
	switch {
	case errors.Is(err, subscription.ErrLinkExpired):
		h.render(w, http.StatusBadRequest, "message", page{
			Title:   "This link has expired",
			Message: "Confirmation links work for a limited time. Subscribe again to get a new one.",
		})
	case errors.As(err, &verr):
		msg := "The link is not valid."
		for _, v := range verr.Violations {
			switch {
			case v.Field != "token":
			case v.Description == "is required":
				msg = "The link is incomplete; open the whole link from the mail."
			default:
				msg = "The link " + v.Description + "."
			}
		}
		h.render(w, http.StatusBadRequest, "message", page{Title: "This link does not work", Message: msg})
	default:
		h.log.ErrorContext(r.Context(), "link page failed", "path", r.URL.Path, "err", err)
		h.render(w, http.StatusInternalServerError, "message", page{
			Title:   "Something went wrong",
			Message: "Please try again in a moment.",
		})
	}
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

// clientOf is the consent evidence of a page request. The IP is the TCP
// peer: behind a reverse proxy that is the proxy (trusting X-Forwarded-For
// from configured proxies is future configuration). A link-local peer's
// zone ("%eth0") names our interface, not the reader, and is dropped.
func clientOf(r *http.Request) subscription.Client {
	var ip string
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().WithZone("").String()
	}
	return subscription.Client{IP: ip, UserAgent: cleanUserAgent(r.UserAgent())}
}

// cleanUserAgent makes any browser's user agent acceptable evidence: valid
// UTF-8, no control characters, at most MaxUserAgentLength bytes.
func cleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, ua)
	for len(ua) > subscription.MaxUserAgentLength {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, p page) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// pageTemplates are the pages. Forms post to relative URLs, so the pages
// also work when PublicURL has a path prefix.
const pageTemplates = `
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}} · paperroute</title>
<style>
body{margin:0;padding:32px 16px;background:#f5f5f5;font:16px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222}
main{max-width:480px;margin:0 auto;background:#fff;padding:24px 28px;border-radius:8px}
h1{font-size:22px;margin:0 0 12px}
button{font:inherit;background:#1a73e8;color:#fff;border:0;border-radius:4px;padding:10px 18px;cursor:pointer}
.muted{color:#555;font-size:14px}
</style></head><body><main>
<h1>{{.Title}}</h1>
{{end}}
{{define "foot"}}</main></body></html>
{{end}}
{{define "confirm-form"}}{{template "head" .}}
<p>Confirm that <strong>{{.Email}}</strong> should get the day's trending research papers by email.</p>
<form method="post" action="confirm">
<input type="hidden" name="token" value="{{.Token}}">
<button type="submit">Confirm subscription</button>
</form>
<p class="muted">Didn't ask for this? Just close this page: nothing is sent without confirmation.</p>
{{template "foot" .}}{{end}}
{{define "unsubscribe-form"}}{{template "head" .}}
<p>Stop sending the paperroute digest to <strong>{{.Email}}</strong>?</p>
<form method="post" action="unsubscribe?token={{.Token}}">
<button type="submit">Unsubscribe</button>
</form>
{{template "foot" .}}{{end}}
{{define "message"}}{{template "head" .}}
{{if .Email}}<p><strong>{{.Email}}</strong></p>{{end}}
<p>{{.Message}}</p>
{{template "foot" .}}{{end}}
`
