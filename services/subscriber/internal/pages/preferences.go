package pages

import (
	"net/http"
	"net/url"
	"time"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// The preferences page behind the manage link of every mail: GET shows the
// subscriber's choices, POST with action=save changes them, POST with
// action=unsubscribe unsubscribes. The manage token stays in the URL; the
// form token is bound to it.

// formPurposePreferences is the purpose of the preferences form's tokens.
const formPurposePreferences = "preferences"

func (h *Handler) showPreferences(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	sub, err := h.svc.GetPreferences(r.Context(), token)
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	if sub.State != subscription.StatePending && sub.State != subscription.StateActive {
		h.showState(w, sub)
		return
	}
	catalogue, ok := h.catalogue(w, r, false)
	if !ok {
		return
	}
	f := h.newPreferencesForm(token, sub)
	h.fill(&f, catalogue, valuesOf(sub.Preferences))
	h.render(w, http.StatusOK, "preferences", f)
}

func (h *Handler) newPreferencesForm(token string, sub subscription.Subscriber) prefsForm {
	return prefsForm{
		Title:          "Your preferences",
		Action:         "preferences?token=" + url.QueryEscape(token),
		FormToken:      h.newFormToken(formPurposePreferences, token, h.now()),
		Email:          sub.Email,
		ShowKeywords:   true,
		TimezoneChosen: true,
		Errors:         map[string]string{},
	}
}

// valuesOf is the form's view of stored preferences.
func valuesOf(p subscription.Preferences) formValues {
	v := formValues{
		topics:    p.Topics,
		keywords:  p.Keywords,
		frequency: p.Frequency,
		weekday:   p.WeeklyDay,
		hour:      p.DeliveryHour,
		timezone:  p.Timezone,
	}
	if v.frequency != subscription.FrequencyWeekly {
		v.weekday = time.Monday // preselected, should they switch to weekly
	}
	return v
}

func (h *Handler) updatePreferences(w http.ResponseWriter, r *http.Request) {
	if h.rejectCrossSite(w, r) {
		return
	}
	form, ok := h.readForm(w, r)
	if !ok {
		return
	}
	token := r.URL.Query().Get("token")
	sub, err := h.svc.GetPreferences(r.Context(), token)
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	catalogue, ok := h.catalogue(w, r, false)
	if !ok {
		return
	}
	f := h.newPreferencesForm(token, sub)
	if !h.checkFormToken(form.Get("form_token"), formPurposePreferences, token, h.now()) {
		// A stale or foreign form: show the stored choices again, fresh.
		f.Problem = "This page was open too long, so nothing was changed. Please make your change again."
		h.fill(&f, catalogue, valuesOf(sub.Preferences))
		h.render(w, http.StatusForbidden, "preferences", f)
		return
	}
	if form.Get("action") == "unsubscribe" {
		sub, err := h.svc.Unsubscribe(r.Context(), token, subscription.ChannelPreferences)
		if err != nil {
			h.linkError(w, r, err)
			return
		}
		h.showState(w, sub)
		return
	}
	if sub.State != subscription.StatePending && sub.State != subscription.StateActive {
		h.showState(w, sub)
		return
	}
	v := parseChoices(form, f.Errors)
	h.fill(&f, catalogue, v)
	if len(f.Errors) == 0 {
		keywords := v.keywords
		if keywords == nil {
			keywords = []string{}
		}
		topics := v.topics
		if topics == nil {
			topics = []string{}
		}
		sub, err = h.svc.UpdatePreferences(r.Context(), token, subscription.PreferencesUpdate{
			Topics:       &topics,
			Keywords:     &keywords,
			Frequency:    &v.frequency,
			WeeklyDay:    &v.weekday,
			DeliveryHour: &v.hour,
			Timezone:     &v.timezone,
		})
		if err == nil {
			f.Notice = "Saved. Your next digest follows these choices."
			h.fill(&f, catalogue, valuesOf(sub.Preferences))
			h.render(w, http.StatusOK, "preferences", f)
			return
		}
		if !fieldErrors(err, f.Errors, &f.Problem) {
			h.serviceError(w, r, false, err)
			return
		}
	}
	if f.Problem == "" {
		f.Problem = "Nothing was changed. Please correct the marked fields."
	}
	h.render(w, http.StatusBadRequest, "preferences", f)
}
