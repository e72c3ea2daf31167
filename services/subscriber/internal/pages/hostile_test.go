package pages_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/subscriber/internal/pages"
)

// TestSubscribeFormRefusals posts broken and hostile sign-up forms: each
// gets a clear page with the reader's input kept, and nothing is stored or
// sent.
func TestSubscribeFormRefusals(t *testing.T) {
	h := start(t)
	big := strings.Repeat("a", 10<<10)
	tests := []struct {
		name     string
		change   func(f url.Values)
		wantCode int
		wantText string
	}{
		{"CR/LF header injection", func(f url.Values) { f.Set("email", "ada@example.com\r\nBcc: victim@example.com") }, 400, "The email address"},
		{"LF alone", func(f url.Values) { f.Set("email", "ada@example.com\nx") }, 400, "The email address"},
		{"NUL", func(f url.Values) { f.Set("email", "ada\x00@example.com") }, 400, "The email address"},
		{"10 KB address", func(f url.Values) { f.Set("email", big+"@example.com") }, 400, "The email address"},
		{"display name", func(f url.Values) { f.Set("email", "Ada <ada@example.com>") }, 400, "The email address"},
		{"markup", func(f url.Values) { f.Set("email", `"><script>alert(1)</script>@example.com`) }, 400, "The email address"},
		{"empty address", func(f url.Values) { f.Set("email", "") }, 400, "The email address"},
		{"invalid UTF-8", func(f url.Values) { f.Set("email", "ada\xff@example.com") }, 400, "The email address"},
		{"unknown topic", func(f url.Values) { f.Add("topics", "no-such-topic") }, 400, "A topic"},
		{"10 KB topic", func(f url.Values) { f.Set("topics", big) }, 400, "A topic"},
		{"hour 24", func(f url.Values) { f.Set("hour", "24") }, 400, "Choose an hour"},
		{"hour -1", func(f url.Values) { f.Set("hour", "-1") }, 400, "Choose an hour"},
		{"hour 7.5", func(f url.Values) { f.Set("hour", "7.5") }, 400, "Choose an hour"},
		{"hour 007", func(f url.Values) { f.Set("hour", "007") }, 400, "Choose an hour"},
		{"no hour", func(f url.Values) { f.Del("hour") }, 400, "Choose an hour"},
		{"frequency hourly", func(f url.Values) { f.Set("frequency", "hourly") }, 400, "Choose daily or weekly"},
		{"weekday funday", func(f url.Values) { f.Set("weekday", "funday") }, 400, "Choose a day"},
		{"unknown zone", func(f url.Values) { f.Set("timezone", "Mars/Olympus_Mons") }, 400, "The time zone"},
		{"zone as a path", func(f url.Values) { f.Set("timezone", "../../../etc/passwd") }, 400, "The time zone"},
		{"zone Local", func(f url.Values) { f.Set("timezone", "Local") }, 400, "The time zone"},
		{"10 KB zone", func(f url.Values) { f.Set("timezone", big) }, 400, "The time zone"},
		{"no zone", func(f url.Values) { f.Del("timezone") }, 400, "Choose a time zone"},
		{"no consent version", func(f url.Values) { f.Del("consent_version") }, 400, "consent text changed"},
		{"another consent version", func(f url.Values) { f.Set("consent_version", "v0") }, 400, "consent text changed"},
		{"no form token", func(f url.Values) { f.Del("form_token") }, 403, "press Subscribe again"},
		{"tampered form token", func(f url.Values) { f.Set("form_token", f.Get("form_token")+"A") }, 403, "press Subscribe again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := h.validSubscribe(t, "ada@example.com")
			tt.change(form)
			before := h.Dump(t)
			res := h.postForm(t, h.PublicURL+"/subscribe", form)
			if res.code != tt.wantCode {
				t.Errorf("code = %d, want %d\n%s", res.code, tt.wantCode, res.body)
			}
			if !strings.Contains(res.body, tt.wantText) {
				t.Errorf("page does not explain (%q):\n%s", tt.wantText, res.body)
			}
			if !strings.Contains(res.body, `<form method="post" action="subscribe">`) {
				t.Errorf("the form is not shown again:\n%s", res.body)
			}
			if strings.Count(res.body, "<script") != 1 || strings.Contains(res.body, "\x00") || strings.Contains(res.body, "\r\nBcc") {
				t.Errorf("page echoes hostile input raw:\n%s", res.body)
			}
			wantEmbeddable(t, res)
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
			if n := len(h.Sender.Mails()); n != 0 {
				t.Errorf("%d mails sent", n)
			}
		})
	}

	t.Run("expired form", func(t *testing.T) {
		form := h.validSubscribe(t, "ada@example.com")
		h.Clock.Advance(pages.FormTokenTTL + time.Second)
		before := h.Dump(t)
		res := h.postForm(t, h.PublicURL+"/subscribe", form)
		if res.code != http.StatusForbidden || !strings.Contains(res.body, `value="ada@example.com"`) || !strings.Contains(res.body, `<option selected>Europe/Berlin</option>`) {
			t.Errorf("expired form: %d, want 403 with the input kept\n%s", res.code, res.body)
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("Redis changed (-before +after):\n%s", diff)
		}
		// The fresh token in that page works.
		form.Set("form_token", formTokenRE.FindStringSubmatch(res.body)[1])
		if res := h.postForm(t, h.PublicURL+"/subscribe", form); res.code != http.StatusOK {
			t.Errorf("with the fresh token: %d\n%s", res.code, res.body)
		}
	})
}

// TestSubscribeAcceptsIDN checks internationalised domains sign up, and that
// the answer shows a lookalike domain in the punycode it really is.
func TestSubscribeAcceptsIDN(t *testing.T) {
	h := start(t)
	for _, tt := range []struct{ typed, stored string }{
		{"ada@bücher.example", "ada@xn--bcher-kva.example"},
		{"ada@exаmple.com", "ada@xn--exmple-4nf.com"}, // Cyrillic а: a different domain
	} {
		t.Run(tt.typed, func(t *testing.T) {
			res := h.postForm(t, h.PublicURL+"/subscribe", h.validSubscribe(t, tt.typed))
			if res.code != http.StatusOK || !strings.Contains(res.body, "("+tt.stored+")") {
				t.Fatalf("POST: %d, want 200 naming %s\n%s", res.code, tt.stored, res.body)
			}
			h.waitMails(t, tt.stored, 1)
		})
	}
}

// TestCrossSitePostsRefused checks a browser's cross-site POST changes
// nothing on any form page, while RFC 8058 one-click (sent by mail
// clients, often from their servers) is not subject to the check.
func TestCrossSitePostsRefused(t *testing.T) {
	h := start(t)
	_, tok := h.subscribe(t, "ada@example.com")
	sub, unsubLink := h.activate(t, "bob@example.com")
	manage := h.manageLink(t, sub)
	for name, req := range map[string]struct {
		link string
		form url.Values
	}{
		"subscribe":   {h.PublicURL + "/subscribe", h.validSubscribe(t, "carol@example.com")},
		"confirm":     {h.PublicURL + "/confirm", url.Values{"token": {tok}}},
		"unsubscribe": {unsubLink, nil},
		"preferences": {manage, url.Values{"form_token": {h.formToken(t, manage)}, "action": {"unsubscribe"}}},
	} {
		for _, hdr := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site"},
			{"Origin": "https://evil.example"},
		} {
			var header string
			for k := range hdr {
				header = k
			}
			t.Run(name+" with "+header, func(t *testing.T) {
				before := h.Dump(t)
				res := h.doWith(t, http.MethodPost, req.link, "application/x-www-form-urlencoded", strings.NewReader(req.form.Encode()), hdr)
				if res.code != http.StatusForbidden || !strings.Contains(res.body, "Request refused") {
					t.Errorf("code = %d, want 403\n%s", res.code, res.body)
				}
				if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
					t.Errorf("Redis changed (-before +after):\n%s", diff)
				}
			})
		}
	}
	t.Run("one-click from anywhere", func(t *testing.T) {
		res := h.doWith(t, http.MethodPost, unsubLink, "application/x-www-form-urlencoded",
			strings.NewReader("List-Unsubscribe=One-Click"), map[string]string{"Sec-Fetch-Site": "cross-site"})
		if res.code != http.StatusOK {
			t.Errorf("one-click: %d %s", res.code, res.body)
		}
	})
}
