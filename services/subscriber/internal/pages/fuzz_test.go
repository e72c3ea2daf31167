package pages_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/pages"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// The form handlers are fuzzed with whole POST bodies. The placeholder
// FORMTOKEN in a body is replaced by a valid form token, so the fuzzer gets
// past the CSRF check and reaches the parsing and the domain. Seeds are in
// testdata/fuzz/<FuzzName>.

const formTokenPlaceholder = "FORMTOKEN"

// fuzzHandler serves the pages of env in process (no TCP, for speed).
func fuzzHandler(f *testing.F, env *testenv.Env) http.Handler {
	f.Helper()
	h, err := pages.New(env.Service, logging.Discard(), pages.Options{Now: env.Clock.Now, FormSecret: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	return pages.SecurityHeaders(mux)
}

func serve(handler http.Handler, method, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// tokenOf is the form token of a served form page.
func tokenOf(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	m := formTokenRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no form token in a %d page:\n%s", rec.Code, rec.Body)
	}
	return m[1]
}

// checkPage holds for every answer of a form handler: a known status, an
// HTML page with the security headers, and, unless the request succeeded,
// nothing changed.
func checkPage(t *testing.T, env *testenv.Env, before map[string]string, rec *httptest.ResponseRecorder, okCodes ...int) {
	t.Helper()
	switch rec.Code {
	case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
	default:
		t.Fatalf("status %d:\n%s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if rec.Header().Get("Content-Security-Policy") == "" || !strings.HasSuffix(rec.Body.String(), "</html>\n") {
		t.Errorf("not a whole page with its headers:\n%s", rec.Body)
	}
	if rec.Code != http.StatusOK {
		if diff := cmp.Diff(before, env.Dump(t)); diff != "" {
			t.Errorf("a refused request (%d) changed Redis (-before +after):\n%s", rec.Code, diff)
		}
	}
}

func FuzzSubscribeForm(f *testing.F) {
	env := testenv.New(f, testenv.Options{})
	handler := fuzzHandler(f, env)
	f.Fuzz(func(t *testing.T, body string) {
		token := tokenOf(t, serve(handler, http.MethodGet, "/subscribe", ""))
		body = strings.ReplaceAll(body, formTokenPlaceholder, token)
		before := env.Dump(t)
		rec := serve(handler, http.MethodPost, "/subscribe", body)
		checkPage(t, env, before, rec)
		if n := strings.Count(rec.Body.String(), "<script"); n > 1 {
			t.Errorf("%d <script in a %d page: input echoed raw?\n%s", n, rec.Code, rec.Body)
		}
	})
}

func FuzzPreferencesForm(f *testing.F) {
	env := testenv.New(f, testenv.Options{})
	handler := fuzzHandler(f, env)
	env.Subscribe(f, subscription.SubscribeRequest{Email: "ada@example.com"})
	sub, err := env.Service.GetByEmail(f.Context(), "ada@example.com")
	if err != nil {
		f.Fatal(err)
	}
	target := "/preferences?token=" + manageToken(f, env, sub)
	f.Fuzz(func(t *testing.T, body string) {
		token := tokenOf(t, serve(handler, http.MethodGet, target, ""))
		body = strings.ReplaceAll(body, formTokenPlaceholder, token)
		before := env.Dump(t)
		rec := serve(handler, http.MethodPost, target, body)
		checkPage(t, env, before, rec)
		if strings.Contains(rec.Body.String(), "<script") {
			t.Errorf("a script in the preferences page: input echoed raw?\n%s", rec.Body)
		}
		// Put the subscriber back for the next input.
		if got, err := env.Service.GetByEmail(t.Context(), "ada@example.com"); err == nil && got.State != sub.State {
			env.SetState(t, sub.ID, sub.State)
		}
	})
}

// manageToken signs a manage token for sub, as its mails carry.
func manageToken(t testing.TB, env *testenv.Env, sub subscription.Subscriber) string {
	t.Helper()
	tok, err := env.Keyring.Sign(linktoken.Claims{Purpose: linktoken.Manage, SubscriberID: sub.ID, IssuedAt: env.Clock.Now(), Epoch: sub.TokenEpoch})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
