package pages_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/httpserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/pages"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// harness serves the pages through the platform HTTP server on loopback
// TCP, with links in mails pointing at it.
type harness struct {
	*testenv.Env
	client *http.Client
}

func start(t *testing.T) *harness {
	t.Helper()
	return startWith(t, testenv.Options{})
}

// startWith is start with test environment options (PublicURL is set here).
func startWith(t *testing.T, opts testenv.Options) *harness {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.PublicURL = "http://" + lis.Addr().String()
	env := testenv.New(t, opts)
	h, err := pages.New(env.Service, logging.Discard(), pages.Options{Now: env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.Serve(ctx, lis, pages.SecurityHeaders(mux), time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	client := &http.Client{
		Timeout: 10 * time.Second,
		// Never follow redirects: a redirect is itself a failure here.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &harness{Env: env, client: client}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (h *harness) do(t *testing.T, method, link, contentType string, body io.Reader) response {
	t.Helper()
	return h.doWith(t, method, link, contentType, body, nil)
}

// doWith is do with extra request headers.
func (h *harness) doWith(t *testing.T, method, link, contentType string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, link, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "PagesTest/1.0")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: string(b)}
}

func (h *harness) get(t *testing.T, link string) response {
	t.Helper()
	return h.do(t, http.MethodGet, link, "", nil)
}

func (h *harness) postForm(t *testing.T, link string, form url.Values) response {
	t.Helper()
	return h.do(t, http.MethodPost, link, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// subscribe signs addr up and returns the confirmation link and token.
func (h *harness) subscribe(t *testing.T, addr string) (link, token string) {
	t.Helper()
	h.Env.Subscribe(t, subscription.SubscribeRequest{Email: addr})
	mails := h.MailsTo(addr)
	return testenv.Link(t, h.PublicURL, mails[len(mails)-1], "confirm")
}

// activate subscribes and confirms addr and returns its unsubscribe link.
func (h *harness) activate(t *testing.T, addr string) (sub subscription.Subscriber, unsubscribeLink string) {
	t.Helper()
	_, tok := h.subscribe(t, addr)
	sub, err := h.Service.Confirm(context.Background(), tok, subscription.Client{})
	if err != nil {
		t.Fatal(err)
	}
	return sub, h.signedLink(t, sub, linktoken.Unsubscribe, "unsubscribe")
}

// manageLink returns sub's link to the preferences page, as mails carry it.
func (h *harness) manageLink(t *testing.T, sub subscription.Subscriber) string {
	t.Helper()
	return h.signedLink(t, sub, linktoken.Manage, "preferences")
}

// signedLink returns <PublicURL>/<page>?token=<a token for purpose>.
func (h *harness) signedLink(t *testing.T, sub subscription.Subscriber, purpose linktoken.Purpose, page string) string {
	t.Helper()
	tok, err := h.Keyring.Sign(linktoken.Claims{Purpose: purpose, SubscriberID: sub.ID, IssuedAt: h.Clock.Now(), Epoch: sub.TokenEpoch})
	if err != nil {
		t.Fatal(err)
	}
	return h.PublicURL + "/" + page + "?token=" + url.QueryEscape(tok)
}

func (h *harness) state(t *testing.T, addr string) subscription.Subscriber {
	t.Helper()
	sub, err := h.Service.GetByEmail(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func wantSecurityHeaders(t *testing.T, r response) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestConfirmPage(t *testing.T) {
	h := start(t)
	link, tok := h.subscribe(t, "ada@example.com")

	before := h.Dump(t)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		res := h.do(t, method, link, "", nil)
		if res.code != http.StatusOK {
			t.Fatalf("%s confirm link: %d %s", method, res.code, res.body)
		}
		wantSecurityHeaders(t, res)
	}
	page := h.get(t, link)
	for _, want := range []string{
		`<form method="post" action="confirm">`,
		`<input type="hidden" name="token" value="` + tok + `">`,
		`Confirm subscription</button>`,
		`ada@example.com`,
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("confirm page lacks %q:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "<script") || strings.Contains(page.body, "http") && strings.Contains(page.body, "src=") {
		t.Errorf("page loads scripts or external assets:\n%s", page.body)
	}
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Fatalf("GET changed Redis (-before +after):\n%s", diff)
	}
	if got := h.state(t, "ada@example.com").State; got != subscription.StatePending {
		t.Fatalf("state after GET = %v, want pending", got)
	}

	// The form posts the token in the body to the relative action.
	h.Clock.Advance(time.Minute)
	res := h.postForm(t, h.PublicURL+"/confirm", url.Values{"token": {tok}})
	if res.code != http.StatusOK || !strings.Contains(res.body, "You&#39;re subscribed") {
		t.Fatalf("POST confirm: %d\n%s", res.code, res.body)
	}
	wantSecurityHeaders(t, res)
	sub := h.state(t, "ada@example.com")
	wantConsent := subscription.ConsentEvidence{
		ConsentTextVersion: "v1",
		SignupTime:         testenv.StartTime(),
		ConfirmTime:        testenv.StartTime().Add(time.Minute),
		ConfirmIP:          "127.0.0.1",
		ConfirmUserAgent:   "PagesTest/1.0",
		Source:             "subscribe",
	}
	if sub.State != subscription.StateActive {
		t.Errorf("state = %v, want active", sub.State)
	}
	if diff := cmp.Diff(wantConsent, sub.Consent); diff != "" {
		t.Errorf("consent mismatch (-want +got):\n%s", diff)
	}

	t.Run("token in the query works too and is idempotent", func(t *testing.T) {
		before := h.Dump(t)
		res := h.postForm(t, link, nil)
		if res.code != http.StatusOK {
			t.Fatalf("POST: %d %s", res.code, res.body)
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("second confirm changed Redis (-before +after):\n%s", diff)
		}
	})
	t.Run("GET when already active shows no form", func(t *testing.T) {
		res := h.get(t, link)
		if res.code != http.StatusOK || strings.Contains(res.body, "<form") {
			t.Errorf("GET: %d\n%s", res.code, res.body)
		}
	})
}

func TestConfirmPageBadLinks(t *testing.T) {
	h := start(t)
	link, tok := h.subscribe(t, "ada@example.com")
	_, unsubLink := h.activate(t, "bob@example.com")
	unsubTok := mustQuery(t, unsubLink, "token")
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	tests := []struct {
		name     string
		token    string
		wantText string
	}{
		{"missing token", "", "incomplete"},
		{"garbage", "garbage", "incomplete or damaged"},
		{"truncated", tok[:len(tok)-10], "incomplete or damaged"},
		{"forged", forged, "not a valid link"},
		{"unsubscribe link on confirm", unsubTok, "not a confirmation link"},
		{"oversized", strings.Repeat("a", 10<<10), "incomplete or damaged"},
		{"html injection", `<script>alert(1)</script>`, "incomplete or damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Dump(t)
			for _, res := range []response{
				h.get(t, h.PublicURL+"/confirm?token="+url.QueryEscape(tt.token)),
				h.postForm(t, h.PublicURL+"/confirm", url.Values{"token": {tt.token}}),
			} {
				if res.code != http.StatusBadRequest {
					t.Errorf("code = %d, want 400\n%s", res.code, res.body)
				}
				if !strings.Contains(res.body, tt.wantText) {
					t.Errorf("page does not explain (%q):\n%s", tt.wantText, res.body)
				}
				if strings.Contains(res.body, "<script>") {
					t.Errorf("page echoes markup:\n%s", res.body)
				}
				wantSecurityHeaders(t, res)
			}
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		h.Clock.Advance(testenv.ConfirmTTL + time.Second)
		before := h.Dump(t)
		for _, res := range []response{h.get(t, link), h.postForm(t, link, nil)} {
			if res.code != http.StatusBadRequest || !strings.Contains(res.body, "Subscribe again") {
				t.Errorf("expired link: %d\n%s", res.code, res.body)
			}
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("Redis changed (-before +after):\n%s", diff)
		}
	})
	t.Run("token in a URL over the header limit", func(t *testing.T) {
		res := h.get(t, h.PublicURL+"/confirm?token="+strings.Repeat("a", 100<<10))
		if res.code != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("code = %d, want 431", res.code)
		}
	})
}

func TestUnsubscribePage(t *testing.T) {
	h := start(t)
	_, link := h.activate(t, "ada@example.com")

	before := h.Dump(t)
	page := h.get(t, link)
	if page.code != http.StatusOK {
		t.Fatalf("GET: %d %s", page.code, page.body)
	}
	wantAction := `action="unsubscribe?token=` + mustQuery(t, link, "token") + `"`
	if !strings.Contains(page.body, wantAction) || !strings.Contains(page.body, "Unsubscribe</button>") {
		t.Errorf("page lacks the form posting to the same URL (%s):\n%s", wantAction, page.body)
	}
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Fatalf("GET changed Redis (-before +after):\n%s", diff)
	}

	h.Clock.Advance(time.Minute)
	res := h.postForm(t, link, nil)
	if res.code != http.StatusOK || !strings.Contains(res.body, "You&#39;re unsubscribed") {
		t.Fatalf("POST: %d\n%s", res.code, res.body)
	}
	sub := h.state(t, "ada@example.com")
	if sub.State != subscription.StateUnsubscribed || sub.Consent.UnsubscribeChannel != subscription.ChannelPage ||
		!sub.Consent.UnsubscribeTime.Equal(testenv.StartTime().Add(time.Minute)) {
		t.Errorf("after page unsubscribe: %+v", sub)
	}
	if res := h.get(t, link); res.code != http.StatusOK || strings.Contains(res.body, "<form") {
		t.Errorf("GET after unsubscribing: %d\n%s", res.code, res.body)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	h := start(t)
	oneClick := func(t *testing.T, link string) response {
		t.Helper()
		return h.do(t, http.MethodPost, link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	}
	t.Run("url-encoded", func(t *testing.T) {
		_, link := h.activate(t, "ada@example.com")
		h.Clock.Advance(time.Minute)
		res := oneClick(t, link)
		if res.code != http.StatusOK {
			t.Fatalf("code = %d, want 200 (no redirect)\n%s", res.code, res.body)
		}
		if res.header.Get("Location") != "" || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") || len(res.body) > 64 {
			t.Errorf("want a tiny plain-text body and no Location; got %v %q", res.header, res.body)
		}
		sub := h.state(t, "ada@example.com")
		if sub.State != subscription.StateUnsubscribed || sub.Consent.UnsubscribeChannel != subscription.ChannelOneClick {
			t.Errorf("after one-click: %+v", sub)
		}
		before := h.Dump(t)
		if res := oneClick(t, link); res.code != http.StatusOK {
			t.Errorf("second one-click: %d %s", res.code, res.body)
		}
		if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
			t.Errorf("second one-click changed Redis (-before +after):\n%s", diff)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		_, link := h.activate(t, "bob@example.com")
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		if err := mw.WriteField("List-Unsubscribe", "One-Click"); err != nil {
			t.Fatal(err)
		}
		_ = mw.Close()
		res := h.do(t, http.MethodPost, link, mw.FormDataContentType(), &body)
		if res.code != http.StatusOK {
			t.Fatalf("code = %d\n%s", res.code, res.body)
		}
		if sub := h.state(t, "bob@example.com"); sub.Consent.UnsubscribeChannel != subscription.ChannelOneClick {
			t.Errorf("channel = %q, want one-click", sub.Consent.UnsubscribeChannel)
		}
	})
	t.Run("bad tokens", func(t *testing.T) {
		_, confirmTok := h.subscribe(t, "carol@example.com")
		for name, tok := range map[string]string{
			"missing":       "",
			"garbage":       "x.y.z",
			"confirm token": confirmTok,
		} {
			t.Run(name, func(t *testing.T) {
				before := h.Dump(t)
				res := oneClick(t, h.PublicURL+"/unsubscribe?token="+url.QueryEscape(tok))
				if res.code != http.StatusBadRequest {
					t.Errorf("code = %d, want 400\n%s", res.code, res.body)
				}
				if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
					t.Errorf("Redis changed (-before +after):\n%s", diff)
				}
			})
		}
	})
}

func TestHostileRequests(t *testing.T) {
	h := start(t)
	confirmLink, _ := h.subscribe(t, "ada@example.com")
	_, unsubLink := h.activate(t, "bob@example.com")
	big := strings.Repeat("a", pages.MaxBodyBytes+1)

	tests := []struct {
		name        string
		method      string
		link        string
		contentType string
		body        string
		want        int
	}{
		{"oversized confirm body", http.MethodPost, confirmLink, "application/x-www-form-urlencoded", "token=" + big, http.StatusRequestEntityTooLarge},
		{"oversized unsubscribe body", http.MethodPost, unsubLink, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click&x=" + big, http.StatusRequestEntityTooLarge},
		{"broken url-encoding", http.MethodPost, unsubLink, "application/x-www-form-urlencoded", "List-Unsubscribe=%zz", http.StatusBadRequest},
		{"broken multipart", http.MethodPost, unsubLink, "multipart/form-data; boundary=xyz", "--xyz\r\nnonsense", http.StatusBadRequest},
		{"PUT confirm", http.MethodPut, confirmLink, "", "", http.StatusMethodNotAllowed},
		{"DELETE unsubscribe", http.MethodDelete, unsubLink, "", "", http.StatusMethodNotAllowed},
		{"PATCH unsubscribe", http.MethodPatch, unsubLink, "", "List-Unsubscribe=One-Click", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Dump(t)
			res := h.do(t, tt.method, tt.link, tt.contentType, strings.NewReader(tt.body))
			if res.code != tt.want {
				t.Errorf("code = %d, want %d\n%s", res.code, tt.want, res.body)
			}
			wantSecurityHeaders(t, res)
			if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
				t.Errorf("Redis changed (-before +after):\n%s", diff)
			}
		})
	}
	if got := h.state(t, "bob@example.com").State; got != subscription.StateActive {
		t.Errorf("bob is %v after hostile requests, want active", got)
	}
}

func mustQuery(t *testing.T, link, key string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}

// TestConfirmOverLinkLocalIPv6 checks that a reader whose connection comes
// from a link-local IPv6 address (the peer address then carries a zone,
// "[fe80::1%eth0]:port") can confirm: the zone is not part of the evidence.
func TestConfirmOverLinkLocalIPv6(t *testing.T) {
	h := start(t)
	_, tok := h.subscribe(t, "ada@example.com")
	handler, err := pages.New(h.Service, logging.Discard(), pages.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	handler.Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/confirm", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "[fe80::1%eth0]:50123"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST confirm from a link-local peer: %d\n%s", rec.Code, rec.Body)
	}
	sub := h.state(t, "ada@example.com")
	if sub.State != subscription.StateActive || sub.Consent.ConfirmIP != "fe80::1" {
		t.Errorf("after confirming: state %v, confirm IP %q; want active, fe80::1", sub.State, sub.Consent.ConfirmIP)
	}
}
