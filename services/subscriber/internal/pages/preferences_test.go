package pages_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// preferencesForm is a complete preferences change with a fresh form token.
func (h *harness) preferencesForm(t *testing.T, link string) url.Values {
	t.Helper()
	ids := h.topicIDs(t)
	return url.Values{
		"form_token": {h.formToken(t, link)},
		"action":     {"save"},
		"topics":     {ids[0], ids[1]},
		"keywords":   {"diffusion, robot learning ,, diffusion"},
		"frequency":  {"weekly"},
		"weekday":    {"sunday"},
		"hour":       {"0"},
		"timezone":   {"Asia/Kathmandu"},
	}
}

func TestPreferencesPage(t *testing.T) {
	h := start(t)
	sub, _ := h.activate(t, "ada@example.com")
	link := h.manageLink(t, sub)

	before := h.Dump(t)
	res := h.get(t, link)
	if res.code != http.StatusOK {
		t.Fatalf("GET: %d\n%s", res.code, res.body)
	}
	wantSecurityHeaders(t, res)
	wantAction := `action="preferences?token=` + mustQuery(t, link, "token") + `"`
	for _, want := range []string{wantAction, "ada@example.com", `name="keywords"`, `value="daily" checked`,
		`id="timezone" name="timezone" data-chosen="1"`, `value="unsubscribe"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %q:\n%s", want, res.body)
		}
	}
	if strings.Contains(res.body, "<script") {
		t.Error("the preferences page has a script")
	}
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Fatalf("GET changed Redis (-before +after):\n%s", diff)
	}

	t.Run("save", func(t *testing.T) {
		res := h.postForm(t, link, h.preferencesForm(t, link))
		if res.code != http.StatusOK || !strings.Contains(res.body, "Saved.") {
			t.Fatalf("POST: %d\n%s", res.code, res.body)
		}
		ids := h.topicIDs(t)
		want := subscription.Preferences{
			Topics:       ids[:2],
			Keywords:     []string{"diffusion", "robot learning"},
			Frequency:    subscription.FrequencyWeekly,
			WeeklyDay:    time.Sunday,
			DeliveryHour: 0,
			Timezone:     "Asia/Kathmandu",
			Locale:       "en",
		}
		got := h.state(t, "ada@example.com")
		if diff := cmp.Diff(want, got.Preferences); diff != "" {
			t.Errorf("preferences (-want +got):\n%s", diff)
		}
		if got.State != subscription.StateActive {
			t.Errorf("state = %v, want active", got.State)
		}
		for _, shown := range []string{`value="diffusion, robot learning"`, `<option value="0" selected>00:00</option>`,
			`<option value="sunday" selected>Sunday</option>`, `<option selected>Asia/Kathmandu</option>`, `value="weekly" checked`} {
			if !strings.Contains(res.body, shown) {
				t.Errorf("saved page does not show %q", shown)
			}
		}
	})

	t.Run("clearing topics and keywords", func(t *testing.T) {
		form := h.preferencesForm(t, link)
		form.Del("topics")
		form.Set("keywords", "  ")
		if res := h.postForm(t, link, form); res.code != http.StatusOK {
			t.Fatalf("POST: %d\n%s", res.code, res.body)
		}
		got := h.state(t, "ada@example.com").Preferences
		if len(got.Topics) != 0 || len(got.Keywords) != 0 {
			t.Errorf("after clearing: topics %q, keywords %q", got.Topics, got.Keywords)
		}
	})

	t.Run("unsubscribe button", func(t *testing.T) {
		h.Clock.Advance(time.Minute)
		res := h.postForm(t, link, url.Values{"form_token": {h.formToken(t, link)}, "action": {"unsubscribe"}})
		if res.code != http.StatusOK || !strings.Contains(res.body, "You&#39;re unsubscribed") {
			t.Fatalf("POST: %d\n%s", res.code, res.body)
		}
		got := h.state(t, "ada@example.com")
		if got.State != subscription.StateUnsubscribed || got.Consent.UnsubscribeChannel != subscription.ChannelPreferences {
			t.Errorf("after unsubscribing: %+v", got)
		}
		if res := h.get(t, link); res.code != http.StatusOK || strings.Contains(res.body, "<form") {
			t.Errorf("GET after unsubscribing: %d\n%s", res.code, res.body)
		}
	})
}

func TestPreferencesRefusals(t *testing.T) {
	h := start(t)
	sub, unsubLink := h.activate(t, "ada@example.com")
	other, _ := h.activate(t, "bob@example.com")
	link := h.manageLink(t, sub)
	_, confirmTok := h.subscribe(t, "carol@example.com")
	tok := mustQuery(t, link, "token")
	forged := tok[:strings.LastIndexByte(tok, '.')+1] + strings.Repeat("A", len(tok)-strings.LastIndexByte(tok, '.')-1)
	big := strings.Repeat("k", 10<<10)

	t.Run("bad links", func(t *testing.T) {
		for _, tt := range []struct{ name, token, want string }{
			{"missing", "", "incomplete"},
			{"garbage", "garbage", "incomplete or damaged"},
			{"truncated", tok[:len(tok)-5], "incomplete or damaged"},
			{"forged", forged, "not a valid link"},
			{"confirm token", confirmTok, "not a preferences link"},
			{"unsubscribe token", mustQuery(t, unsubLink, "token"), "not a preferences link"},
			{"10 KB", big, "incomplete or damaged"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				l := h.PublicURL + "/preferences?token=" + url.QueryEscape(tt.token)
				before := h.Dump(t)
				for _, res := range []response{h.get(t, l), h.postForm(t, l, url.Values{"action": {"unsubscribe"}})} {
					if res.code != http.StatusBadRequest || !strings.Contains(res.body, tt.want) {
						t.Errorf("%d, want 400 saying %q\n%s", res.code, tt.want, res.body)
					}
				}
				if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
					t.Errorf("Redis changed (-before +after):\n%s", diff)
				}
			})
		}
	})

	t.Run("bad values", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			change func(url.Values)
			code   int
			want   string
		}{
			{"unknown topic", func(f url.Values) { f.Add("topics", "nope") }, 400, "A topic"},
			{"21 keywords", func(f url.Values) { f.Set("keywords", strings.Repeat("k,", 20)+"last") }, 400, "keyword"},
			{"10 KB keyword", func(f url.Values) { f.Set("keywords", big) }, 400, "A keyword"},
			{"NUL in a keyword", func(f url.Values) { f.Set("keywords", "a\x00b") }, 400, "A keyword"},
			{"CR/LF in the zone", func(f url.Values) { f.Set("timezone", "Europe/Berlin\r\nX: y") }, 400, "The time zone"},
			{"hour 25", func(f url.Values) { f.Set("hour", "25") }, 400, "Choose an hour"},
			{"no form token", func(f url.Values) { f.Del("form_token") }, 403, "nothing was changed"},
			{"another subscriber's form token", func(f url.Values) {
				f.Set("form_token", h.formToken(t, h.manageLink(t, other)))
			}, 403, "nothing was changed"},
			{"unsubscribe without form token", func(f url.Values) { f.Del("form_token"); f.Set("action", "unsubscribe") }, 403, "nothing was changed"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				form := h.preferencesForm(t, link)
				tt.change(form)
				before := h.Dump(t)
				res := h.postForm(t, link, form)
				if res.code != tt.code || !strings.Contains(res.body, tt.want) {
					t.Errorf("%d, want %d saying %q\n%s", res.code, tt.code, tt.want, res.body)
				}
				if !strings.Contains(res.body, `action="preferences?token=`) {
					t.Errorf("the form is not shown again:\n%s", res.body)
				}
				if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
					t.Errorf("Redis changed (-before +after):\n%s", diff)
				}
			})
		}
	})

	t.Run("revoked link", func(t *testing.T) {
		form := h.preferencesForm(t, link)
		if _, err := h.Service.RevokeLinks(t.Context(), sub.ID); err != nil {
			t.Fatal(err)
		}
		before := h.Dump(t)
		for _, res := range []response{h.get(t, link), h.postForm(t, link, form)} {
			if res.code != http.StatusBadRequest || !strings.Contains(res.body, "no longer valid") {
				t.Errorf("%d\n%s", res.code, res.body)
			}
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("Redis changed (-before +after):\n%s", diff)
		}
	})

	t.Run("suppressed", func(t *testing.T) {
		h.SetState(t, other.ID, subscription.StateSuppressed)
		l := h.manageLink(t, h.state(t, "bob@example.com"))
		res := h.get(t, l)
		if res.code != http.StatusOK || strings.Contains(res.body, "<form") || !strings.Contains(res.body, "No mail to this address") {
			t.Errorf("GET: %d\n%s", res.code, res.body)
		}
	})
}
