package pages_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/browserrpc"
	"github.com/paperroute/paperroute/platform/logging"

	"github.com/paperroute/paperroute/services/subscriber/internal/pages"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

var formTokenRE = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// formToken returns the form token of the form page at link.
func (h *harness) formToken(t *testing.T, link string) string {
	t.Helper()
	res := h.get(t, link)
	m := formTokenRE.FindStringSubmatch(res.body)
	if res.code != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d, no form token:\n%s", link, res.code, res.body)
	}
	return m[1]
}

// validSubscribe is a complete sign-up form with a fresh form token.
func (h *harness) validSubscribe(t *testing.T, email string) url.Values {
	t.Helper()
	return url.Values{
		"form_token":      {h.formToken(t, h.PublicURL+"/subscribe")},
		"consent_version": {pages.DefaultConsent.Version},
		"email":           {email},
		"topics":          {h.topicIDs(t)[0]},
		"frequency":       {"weekly"},
		"weekday":         {"thursday"},
		"hour":            {"8"},
		"timezone":        {"Europe/Berlin"},
	}
}

func (h *harness) topicIDs(t *testing.T) []string {
	t.Helper()
	topics, err := h.Service.Topics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) < 2 {
		t.Fatalf("the test catalogue has %d topics; the tests need two", len(topics))
	}
	ids := make([]string, len(topics))
	for i, tp := range topics {
		ids[i] = tp.ID
	}
	return ids
}

// waitMails works the service's job queue (where Subscribe leaves the mail
// decision) until addr has at least n mails.
func (h *harness) waitMails(t *testing.T, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Work(t); len(h.MailsTo(addr)) < n; h.Work(t) {
		if time.Now().After(deadline) {
			t.Fatalf("%s got %d mails, want %d", addr, len(h.MailsTo(addr)), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantEmbeddable(t *testing.T, r response) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors *", "form-action 'self'", "base-uri 'none'", "script-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, directive := range strings.Split(csp, ";") {
		if d := strings.TrimSpace(directive); strings.HasPrefix(d, "script-src") && (strings.Contains(d, "unsafe") || strings.Contains(d, "*")) {
			t.Errorf("CSP allows scripts other than the one by hash: %q", d)
		}
	}
	if xfo := r.header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("X-Frame-Options = %q on the embeddable form", xfo)
	}
	for name, want := range map[string]string{"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestSubscribePage(t *testing.T) {
	h := start(t)
	before := h.Dump(t)
	res := h.get(t, h.PublicURL+"/subscribe")
	if res.code != http.StatusOK {
		t.Fatalf("GET /subscribe: %d\n%s", res.code, res.body)
	}
	wantEmbeddable(t, res)
	topics, err := h.Service.Topics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wants := []string{
		`<form method="post" action="subscribe">`,
		`<input type="email" id="email" name="email"`,
		`<input type="hidden" name="consent_version" value="` + pages.DefaultConsent.Version + `">`,
		pages.DefaultConsent.Text,
		`<option selected>UTC</option>`,
		`<option value="7" selected>07:00</option>`,
		`value="daily" checked`,
		`<option value="monday" selected>Monday</option>`,
	}
	for _, tp := range topics {
		wants = append(wants, `<input type="checkbox" name="topics" value="`+tp.ID+`">`+tp.Label+`</label>`)
	}
	for _, want := range wants {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(res.body, "<script"); n != 1 {
		t.Errorf("page has %d scripts, want the one time zone script", n)
	}
	if strings.Contains(res.body, "src=") || strings.Contains(res.body, "<link") {
		t.Errorf("page loads external assets:\n%s", res.body)
	}
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Errorf("GET changed Redis (-before +after):\n%s", diff)
	}

	t.Run("embed", func(t *testing.T) {
		res := h.get(t, h.PublicURL+"/subscribe?embed=1")
		if !strings.Contains(res.body, `<body class="embed">`) || !strings.Contains(res.body, `action="subscribe?embed=1"`) {
			t.Errorf("embed=1 page:\n%s", res.body)
		}
		wantEmbeddable(t, res)
	})
	t.Run("other pages stay unframeable", func(t *testing.T) {
		wantSecurityHeaders(t, h.get(t, h.PublicURL+"/confirm?token=x"))
		wantSecurityHeaders(t, h.get(t, h.PublicURL+"/preferences?token=x"))
	})
}

func TestSubscribeByForm(t *testing.T) {
	h := start(t)
	form := h.validSubscribe(t, "ada@example.com")
	res := h.postForm(t, h.PublicURL+"/subscribe", form)
	if res.code != http.StatusOK || !strings.Contains(res.body, "Check your inbox") || !strings.Contains(res.body, "ada@example.com") {
		t.Fatalf("POST /subscribe: %d\n%s", res.code, res.body)
	}
	wantEmbeddable(t, res)
	h.waitMails(t, "ada@example.com", 1)
	sub := h.state(t, "ada@example.com")
	hour := 8
	want := subscription.Preferences{
		Topics:       []string{h.topicIDs(t)[0]},
		Keywords:     []string{},
		Frequency:    subscription.FrequencyWeekly,
		WeeklyDay:    time.Thursday,
		DeliveryHour: hour,
		Timezone:     "Europe/Berlin",
		Locale:       "en",
	}
	if diff := cmp.Diff(want, sub.Preferences); diff != "" {
		t.Errorf("preferences (-want +got):\n%s", diff)
	}
	if sub.State != subscription.StatePending || sub.Consent.ConsentTextVersion != pages.DefaultConsent.Version ||
		sub.Consent.SignupIP != "127.0.0.1" || sub.Consent.SignupUserAgent != "PagesTest/1.0" {
		t.Errorf("record after sign-up: %+v", sub)
	}

	t.Run("the answer is the same for every state", func(t *testing.T) {
		_, _ = h.activate(t, "active@example.com")
		suppressed, _ := h.activate(t, "suppressed@example.com")
		h.SetState(t, suppressed.ID, subscription.StateSuppressed)
		answer := func(addr string) string {
			h.Clock.Advance(time.Second)
			res := h.postForm(t, h.PublicURL+"/subscribe", h.validSubscribe(t, addr))
			if res.code != http.StatusOK {
				t.Fatalf("%s: %d\n%s", addr, res.code, res.body)
			}
			return strings.ReplaceAll(res.body, addr, "ADDR")
		}
		want := answer("new@example.com")
		for _, addr := range []string{"ada@example.com", "active@example.com", "suppressed@example.com"} {
			if got := answer(addr); got != want {
				t.Errorf("answer for %s differs:\n%s", addr, cmp.Diff(want, got))
			}
		}
	})
}

// TestSubscribeRateLimited checks a sign-up over a limit gets the friendly
// 429 page with Retry-After, and is not signed up.
func TestSubscribeRateLimited(t *testing.T) {
	limits := testenv.GenerousLimits()
	limits.PerIP = subscription.Limit{Rate: 2, Burst: 2, Period: time.Hour}
	h := startWith(t, testenv.Options{Limits: limits})
	for _, addr := range []string{"a@example.com", "b@example.com"} {
		if res := h.postForm(t, h.PublicURL+"/subscribe", h.validSubscribe(t, addr)); res.code != http.StatusOK {
			t.Fatalf("%s within the limit: %d\n%s", addr, res.code, res.body)
		}
	}
	res := h.postForm(t, h.PublicURL+"/subscribe", h.validSubscribe(t, "c@example.com"))
	if res.code != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many sign-ups just now") || !strings.Contains(res.body, "try again in") {
		t.Fatalf("over the limit: %d, want 429 with a friendly page\n%s", res.code, res.body)
	}
	if secs, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || secs < 1 || secs > 3600 {
		t.Errorf("Retry-After = %q, want 1..3600 seconds", res.header.Get("Retry-After"))
	}
	wantEmbeddable(t, res)
	h.Work(t)
	if _, err := h.Service.GetByEmail(context.Background(), "c@example.com"); !errors.Is(err, subscription.ErrNotFound) {
		t.Errorf("the limited sign-up was stored: %v", err)
	}
	if n := len(h.MailsTo("c@example.com")); n != 0 {
		t.Errorf("the limited sign-up got %d mails", n)
	}
}

// TestSubscribeBehindProxy checks the sign-up's evidence (and so its rate
// limits) names the reader a trusted proxy reports, and only a trusted one.
func TestSubscribeBehindProxy(t *testing.T) {
	h := start(t)
	// httptest requests come from 192.0.2.1: that is the proxy.
	trusting := browserrpc.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, ClientIPHeader: "X-Forwarded-For"}
	for _, tt := range []struct {
		name string
		cfg  browserrpc.Config
		want string
	}{
		{"trusted proxy", trusting, "203.0.113.9"},
		{"no proxy configured", browserrpc.Config{}, "192.0.2.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			handler, err := pages.New(h.Service, logging.Discard(), pages.Options{Now: h.Clock.Now, ClientIP: tt.cfg.ClientIP})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			handler.Register(mux)
			serveForm := func(method, body string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(method, "/subscribe", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", "198.51.100.7, 203.0.113.9")
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				return rec
			}
			form := h.validSubscribe(t, "proxied-"+strings.ReplaceAll(tt.name, " ", "-")+"@example.com")
			form.Set("form_token", formTokenRE.FindStringSubmatch(serveForm(http.MethodGet, "").Body.String())[1])
			if rec := serveForm(http.MethodPost, form.Encode()); rec.Code != http.StatusOK {
				t.Fatalf("POST: %d\n%s", rec.Code, rec.Body)
			}
			h.Work(t)
			if got := h.state(t, form.Get("email")).Consent.SignupIP; got != tt.want {
				t.Errorf("signup IP = %q, want %q", got, tt.want)
			}
		})
	}
}
