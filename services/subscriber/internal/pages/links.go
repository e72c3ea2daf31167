package pages

import (
	"errors"
	"io"
	"net/http"

	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// The pages behind the confirmation and unsubscribe links, and the RFC 8058
// one-click unsubscribe.

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
	if h.rejectCrossSite(w, r) {
		return
	}
	form, ok := h.readForm(w, r)
	if !ok {
		return
	}
	token := form.Get("token")
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	sub, err := h.svc.Confirm(r.Context(), token, h.clientOf(r))
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
	if h.rejectCrossSite(w, r) {
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
		p.Message = "The trending research papers will arrive in your inbox as you chose. Every mail has links to change your preferences and to unsubscribe."
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
