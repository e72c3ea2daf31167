package pages

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// The sign-up form: GET /subscribe shows it, POST /subscribe signs up.
//
// It is the one page other sites may frame (frame-ancestors *, no
// X-Frame-Options), so a newsletter box can be an <iframe> on any site.
// That is safe to allow: the form never arrives filled in (no address from
// the URL), so a framing page cannot trick a click into a sign-up, and a
// sign-up only ever sends a confirmation mail. Every other page refuses to
// be framed. ?embed=1 drops the page margins for use in an <iframe>.

// tzScript preselects the browser's time zone in the form. It is the only
// script of any page and is allowed by its hash (subscribeCSP). Without
// JavaScript the form shows the service's default zone.
const tzScript = `(function(){var s=document.getElementById("timezone");if(!s||s.getAttribute("data-chosen"))return;var z;try{z=Intl.DateTimeFormat().resolvedOptions().timeZone}catch(e){return}if(!z)return;for(var i=0;i<s.options.length;i++){if(s.options[i].value===z){s.value=z;return}}var o=document.createElement("option");o.textContent=z;s.insertBefore(o,s.firstChild);s.value=z})();`

// subscribeCSP is the Content-Security-Policy of the sign-up form: the
// default policy, plus the time zone script by hash, and framing by any
// site.
var subscribeCSP = func() string {
	sum := sha256.Sum256([]byte(tzScript))
	return "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors *; base-uri 'none'"
}()

// formPurposeSubscribe is the purpose of the sign-up form's tokens.
const formPurposeSubscribe = "subscribe"

// embedHeaders lets other sites frame the response.
func embedHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", subscribeCSP)
	w.Header().Del("X-Frame-Options")
}

func (h *Handler) showSubscribe(w http.ResponseWriter, r *http.Request) {
	embedHeaders(w)
	f := h.newSubscribeForm(r)
	catalogue, ok := h.catalogue(w, r, f.Embed)
	if !ok {
		return
	}
	h.fill(&f, catalogue, formValues{frequency: subscription.FrequencyDaily, weekday: time.Monday, hour: h.defaultHour, timezone: h.defaultTZ})
	h.render(w, http.StatusOK, "subscribe", f)
}

func (h *Handler) newSubscribeForm(r *http.Request) prefsForm {
	embed := r.URL.Query().Get("embed") == "1"
	action := "subscribe"
	if embed {
		action += "?embed=1"
	}
	return prefsForm{
		Title:     "Subscribe to paperroute",
		Embed:     embed,
		Action:    action,
		FormToken: h.newFormToken(formPurposeSubscribe, "", h.now()),
		Consent:   h.consent,
		Script:    template.HTML("<script>" + tzScript + "</script>"),
		Errors:    map[string]string{},
	}
}

// catalogue reads the topic catalogue; on failure it has answered.
func (h *Handler) catalogue(w http.ResponseWriter, r *http.Request, embed bool) ([]subscription.Topic, bool) {
	topics, err := h.svc.Topics(r.Context())
	if err != nil {
		h.log.ErrorContext(r.Context(), "read topic catalogue", "err", err)
		h.render(w, http.StatusServiceUnavailable, "message", page{Embed: embed, Title: "Please try again shortly", Message: "The form cannot be shown right now."})
		return nil, false
	}
	return topics, true
}

func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	embedHeaders(w)
	if h.rejectCrossSite(w, r) {
		return
	}
	form, ok := h.readForm(w, r)
	if !ok {
		return
	}
	f := h.newSubscribeForm(r)
	catalogue, ok := h.catalogue(w, r, f.Embed)
	if !ok {
		return
	}
	v := parseChoices(form, f.Errors)
	f.Email = cleanText(form.Get("email"))
	f.TimezoneChosen = true
	h.fill(&f, catalogue, v)

	code := http.StatusBadRequest
	switch {
	case !h.checkFormToken(form.Get("form_token"), formPurposeSubscribe, "", h.now()):
		// A stale or foreign form: show it again with a fresh token.
		code = http.StatusForbidden
		f.Problem = "This form was open too long. Please check your choices and press Subscribe again."
	case form.Get("consent_version") != h.consent.Version:
		f.Errors["consent"] = "The consent text changed since the page was loaded. Please read it and press Subscribe again."
	case len(f.Errors) > 0:
	default:
		hour := v.hour
		err := h.svc.Subscribe(r.Context(), subscription.SubscribeRequest{
			Email:              form.Get("email"),
			ConsentTextVersion: h.consent.Version,
			Client:             h.clientOf(r),
			Topics:             v.topics,
			Frequency:          v.frequency,
			WeeklyDay:          v.weekday,
			DeliveryHour:       &hour,
			Timezone:           v.timezone,
		})
		if err == nil {
			h.render(w, http.StatusOK, "message", page{
				Embed:   f.Embed,
				Title:   "Check your inbox",
				Message: "A message is on its way to " + shownAddress(f.Email) + ". Open the link in it to confirm your subscription: nothing is sent before you do.",
			})
			return
		}
		if !fieldErrors(err, f.Errors, &f.Problem) {
			h.serviceError(w, r, f.Embed, err)
			return
		}
	}
	if len(f.Errors) > 0 && f.Problem == "" {
		f.Problem = "Please correct the marked fields."
	}
	h.render(w, code, "subscribe", f)
}

// serviceError shows a failure of the service that is not the reader's
// input: a rate limit (429 with Retry-After), the mail service being away
// (503), or anything else (500, logged).
func (h *Handler) serviceError(w http.ResponseWriter, r *http.Request, embed bool, err error) {
	var limit *subscription.LimitError
	switch {
	case errors.As(err, &limit):
		secs := max(1, int(math.Ceil(limit.RetryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.render(w, http.StatusTooManyRequests, "message", page{
			Embed:   embed,
			Title:   "Too many sign-ups just now",
			Message: "To keep the form from being misused, sign-ups are limited. Please try again " + waitText(limit.RetryAfter) + ".",
		})
	case errors.Is(err, subscription.ErrMailUnavailable):
		h.render(w, http.StatusServiceUnavailable, "message", page{Embed: embed, Title: "Please try again shortly", Message: "The mail service is busy right now. Nothing was changed."})
	default:
		h.log.ErrorContext(r.Context(), "page request failed", "path", r.URL.Path, "err", err)
		h.render(w, http.StatusInternalServerError, "message", page{Embed: embed, Title: "Something went wrong", Message: "Please try again in a moment."})
	}
}

// shownAddress is the typed address to show back: with its punycode form
// added when the domain is not plain ASCII, so a lookalike domain
// (exаmple.com with a Cyrillic а) shows as the different domain it is.
func shownAddress(typed string) string {
	addr, err := mailaddr.Parse(typed)
	if err != nil || strings.EqualFold(addr.Addr, typed) {
		return typed
	}
	return typed + " (" + addr.Addr + ")"
}

// waitText says how long to wait, roughly, in words.
func waitText(d time.Duration) string {
	switch {
	case d <= time.Minute:
		return "in a minute"
	case d < time.Hour:
		return "in " + strconv.Itoa(int(math.Ceil(d.Minutes()))) + " minutes"
	case d < 24*time.Hour:
		return "in " + strconv.Itoa(int(math.Ceil(d.Hours()))) + " hours"
	}
	return "tomorrow"
}
