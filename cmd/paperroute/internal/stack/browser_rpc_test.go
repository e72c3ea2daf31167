package stack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/cmd/paperroute/internal/devmode/sample"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// The browser protocols, as a frontend's client library speaks them: the
// Connect protocol with JSON and with binary protobuf, and gRPC-Web. The
// tests call the services' HTTP ports with connect-go's client, which
// speaks all three.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
	{"connect+proto", nil},
	{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// startFrontWorld starts the stack as the dev mode runs it: links and the
// Subscribe box on the subscriber's own HTTP listener, the front page on the
// digest's (the subscriber accepts browser calls from its origin), editions
// recorded every second, and the sample papers imported as featured today.
func startFrontWorld(t *testing.T) *world { return startFrontWorldWith(t, nil) }

// startFrontWorldWith is startFrontWorld with more overrides.
func startFrontWorldWith(t *testing.T, overrides map[string]string) *world {
	t.Helper()
	env := map[string]string{
		"SUBSCRIBER_PUBLIC_URL": "", "DIGEST_ARCHIVE_INTERVAL": "1s",
		// Every call comes from 127.0.0.1: the tests sign up more than a
		// reader would.
		"SUBSCRIBER_LIMIT_PER_IP": "1000/1h", "SUBSCRIBER_LIMIT_PER_NETWORK": "1000/1h",
	}
	for k, v := range overrides {
		env[k] = v
	}
	w := startWorldWith(t, worldOptions{extraEnv: env})
	data, err := sample.PapersFeaturedOn(time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dig.ImportPapers(ctxT(t), &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: data}); err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	return w
}

func (w *world) subscriberURL() string { return "http://" + w.addrs.SubscriberHTTP }
func (w *world) digestURL() string     { return "http://" + w.addrs.DigestHTTP }

// call makes one unary call over a browser protocol, with header set on the
// request (nil for none).
func call[Req, Res any](ctx context.Context, baseURL, method string, opts []connect.ClientOption, req *Req, header http.Header) (*Res, error) {
	c := connect.NewClient[Req, Res](http.DefaultClient, baseURL+method, opts...)
	r := connect.NewRequest(req)
	for k, vs := range header {
		for _, v := range vs {
			r.Header().Add(k, v)
		}
	}
	resp, err := c.CallUnary(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// violations returns the fields the error's google.rpc.BadRequest detail
// names.
func violations(t *testing.T, err error) []string {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v is not a Connect error", err)
	}
	var fields []string
	for _, d := range cerr.Details() {
		m, derr := d.Value()
		if derr != nil {
			t.Fatalf("error detail %s: %v", d.Type(), derr)
		}
		if br, ok := m.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// wantViolation checks err is InvalidArgument naming field.
func wantViolation(t *testing.T, err error, field string) {
	t.Helper()
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("error = %v, want invalid_argument", err)
	}
	if got := violations(t, err); !slices.Contains(got, field) {
		t.Errorf("field violations %v, want one for %q", got, field)
	}
}

// mailLink waits for a mail to rcpt whose text has a link to page, and
// returns the link's token.
func (w *world) mailLink(ctx context.Context, rcpt, page string) string {
	w.t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(w.subscriberURL()+"/"+page+"?token=") + `[A-Za-z0-9_.%\-]+`)
	m, err := w.catcher.WaitFor(ctx, func(m mailcatcher.Message) bool {
		if !mailcatcher.To(rcpt)(m) {
			return false
		}
		p, err := mailcatcher.Parse(m.Data)
		return err == nil && re.MatchString(p.Text)
	})
	if err != nil {
		w.t.Fatalf("no mail to %s with a /%s link: %v", rcpt, page, err)
	}
	p, _ := mailcatcher.Parse(m.Data)
	u, err := url.Parse(re.FindString(p.Text))
	if err != nil {
		w.t.Fatal(err)
	}
	return u.Query().Get("token")
}

// TestPublicRPCsOverBrowserProtocols calls every PUBLIC and TOKEN RPC over
// Connect JSON, Connect binary and gRPC-Web on the services' HTTP ports,
// valid and invalid, and walks a subscription through them: subscribe,
// confirm with the mailed token, unsubscribe with the mailed token.
func TestPublicRPCsOverBrowserProtocols(t *testing.T) {
	w := startFrontWorld(t)
	ctx := ctxT(t)
	sub, dig := w.subscriberURL(), w.digestURL()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			// digest: ListTopics, ListTrending, PreviewDigest.
			topics, err := call[digestv1.ListTopicsRequest, digestv1.ListTopicsResponse](ctx, dig, "/paperroute.digest.v1.DigestService/ListTopics", p.opts, &digestv1.ListTopicsRequest{}, nil)
			if err != nil || len(topics.GetTopics()) == 0 {
				t.Fatalf("ListTopics = %v, %v; want the catalogue", topics, err)
			}
			trending, err := call[digestv1.ListTrendingRequest, digestv1.ListTrendingResponse](ctx, dig, "/paperroute.digest.v1.DigestService/ListTrending", p.opts, &digestv1.ListTrendingRequest{Limit: 5}, nil)
			if err != nil || len(trending.GetPapers()) != 5 || trending.GetPapers()[0].GetWhy() == "" || trending.GetPapers()[0].GetPaper().GetTitle() == "" {
				t.Fatalf("ListTrending(limit 5) = %v, %v; want 5 papers with titles and why lines", trending, err)
			}
			_, err = call[digestv1.ListTrendingRequest, digestv1.ListTrendingResponse](ctx, dig, "/paperroute.digest.v1.DigestService/ListTrending", p.opts, &digestv1.ListTrendingRequest{Topics: []string{"no-such-topic"}}, nil)
			wantViolation(t, err, "topics[0]")
			preview, err := call[digestv1.PreviewDigestRequest, digestv1.PreviewDigestResponse](ctx, dig, "/paperroute.digest.v1.DigestService/PreviewDigest", p.opts,
				&digestv1.PreviewDigestRequest{Preferences: &subscriberv1.Preferences{Topics: []string{topics.GetTopics()[0].GetId()}}}, nil)
			if err != nil || preview.GetSubject() == "" || !strings.Contains(preview.GetHtml(), "<html") {
				t.Fatalf("PreviewDigest(preferences) = %v; want a rendered digest", err)
			}
			_, err = call[digestv1.PreviewDigestRequest, digestv1.PreviewDigestResponse](ctx, dig, "/paperroute.digest.v1.DigestService/PreviewDigest", p.opts,
				&digestv1.PreviewDigestRequest{Preferences: &subscriberv1.Preferences{Topics: []string{"no-such-topic"}}}, nil)
			wantViolation(t, err, "preferences.topics[0]")
			// The operator's half of PreviewDigest stays closed to browsers,
			// even with the admin token (the header is dropped).
			_, err = call[digestv1.PreviewDigestRequest, digestv1.PreviewDigestResponse](ctx, dig, "/paperroute.digest.v1.DigestService/PreviewDigest", p.opts,
				&digestv1.PreviewDigestRequest{SubscriberId: "01J0000000000000000000000"}, http.Header{"Authorization": {"Bearer " + adminToken}})
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("PreviewDigest(subscriber_id) with the admin token over %s = %v, want permission_denied", p.name, err)
			}

			// subscriber: Subscribe → ConfirmSubscription → Unsubscribe.
			email := "reader-" + strings.ReplaceAll(p.name, "+", "-") + "@example.org"
			_, err = call[subscriberv1.SubscribeRequest, subscriberv1.SubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Subscribe_FullMethodName, p.opts,
				&subscriberv1.SubscribeRequest{Email: "not an address", ConsentTextVersion: "v1"}, nil)
			wantViolation(t, err, "email")
			resp, err := call[subscriberv1.SubscribeRequest, subscriberv1.SubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Subscribe_FullMethodName, p.opts,
				&subscriberv1.SubscribeRequest{Email: email, ConsentTextVersion: "v1"}, nil)
			if err != nil || resp.GetMessage() == "" {
				t.Fatalf("Subscribe = %v, %v; want the neutral answer", resp, err)
			}
			_, err = call[subscriberv1.ConfirmSubscriptionRequest, subscriberv1.ConfirmSubscriptionResponse](ctx, sub, subscriberv1.SubscriberService_ConfirmSubscription_FullMethodName, p.opts,
				&subscriberv1.ConfirmSubscriptionRequest{Token: "forged.token"}, nil)
			wantViolation(t, err, "token")
			confirmed, err := call[subscriberv1.ConfirmSubscriptionRequest, subscriberv1.ConfirmSubscriptionResponse](ctx, sub, subscriberv1.SubscriberService_ConfirmSubscription_FullMethodName, p.opts,
				&subscriberv1.ConfirmSubscriptionRequest{Token: w.mailLink(ctx, email, "confirm")}, nil)
			if err != nil || confirmed.GetEmail() != email || confirmed.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE {
				t.Fatalf("ConfirmSubscription = %v, %v; want %s ACTIVE", confirmed, err, email)
			}
			sc, err := w.sub.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: email})
			if err != nil {
				t.Fatal(err)
			}
			if ip := sc.GetSubscriber().GetConsent().GetSignupIp(); ip != "127.0.0.1" {
				t.Errorf("signup IP = %q, want the browser connection's 127.0.0.1", ip)
			}
			// The manage link's TOKEN RPCs, with the token of the welcome
			// or already-subscribed mail's manage link where there is one.
			_, err = call[subscriberv1.GetPreferencesRequest, subscriberv1.GetPreferencesResponse](ctx, sub, subscriberv1.SubscriberService_GetPreferences_FullMethodName, p.opts,
				&subscriberv1.GetPreferencesRequest{Token: "forged.token"}, nil)
			wantViolation(t, err, "token")
			_, err = call[subscriberv1.UpdatePreferencesRequest, subscriberv1.UpdatePreferencesResponse](ctx, sub, subscriberv1.SubscriberService_UpdatePreferences_FullMethodName, p.opts,
				&subscriberv1.UpdatePreferencesRequest{Token: "forged.token", Preferences: &subscriberv1.Preferences{}}, nil)
			wantViolation(t, err, "token")
			// Subscribing an active address again mails an unsubscribe link.
			if _, err := call[subscriberv1.SubscribeRequest, subscriberv1.SubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Subscribe_FullMethodName, p.opts,
				&subscriberv1.SubscribeRequest{Email: email, ConsentTextVersion: "v1"}, nil); err != nil {
				t.Fatalf("Subscribe again: %v", err)
			}
			// The already-subscribed mail's manage link: preferences read and
			// written over the browser protocol.
			manage := w.mailLink(ctx, email, "preferences")
			prefs, err := call[subscriberv1.GetPreferencesRequest, subscriberv1.GetPreferencesResponse](ctx, sub, subscriberv1.SubscriberService_GetPreferences_FullMethodName, p.opts,
				&subscriberv1.GetPreferencesRequest{Token: manage}, nil)
			if err != nil || prefs.GetEmail() != email {
				t.Fatalf("GetPreferences = %v, %v; want %s", prefs, err, email)
			}
			chosen := topics.GetTopics()[1].GetId()
			updated, err := call[subscriberv1.UpdatePreferencesRequest, subscriberv1.UpdatePreferencesResponse](ctx, sub, subscriberv1.SubscriberService_UpdatePreferences_FullMethodName, p.opts,
				&subscriberv1.UpdatePreferencesRequest{Token: manage, Preferences: &subscriberv1.Preferences{
					Topics: []string{chosen}, Frequency: subscriberv1.Frequency_FREQUENCY_WEEKLY, WeeklyDay: subscriberv1.Weekday_WEEKDAY_FRIDAY,
					DeliveryHour: 9, Timezone: "Europe/Berlin",
				}}, nil)
			if err != nil || !slices.Equal(updated.GetPreferences().GetTopics(), []string{chosen}) || updated.GetPreferences().GetTimezone() != "Europe/Berlin" {
				t.Fatalf("UpdatePreferences = %v, %v; want the new topics and zone", updated, err)
			}
			_, err = call[subscriberv1.UpdatePreferencesRequest, subscriberv1.UpdatePreferencesResponse](ctx, sub, subscriberv1.SubscriberService_UpdatePreferences_FullMethodName, p.opts,
				&subscriberv1.UpdatePreferencesRequest{Token: manage, Preferences: &subscriberv1.Preferences{Timezone: "Mars/Olympus_Mons"}}, nil)
			wantViolation(t, err, "preferences.timezone")
			_, err = call[subscriberv1.UnsubscribeRequest, subscriberv1.UnsubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Unsubscribe_FullMethodName, p.opts,
				&subscriberv1.UnsubscribeRequest{}, nil)
			wantViolation(t, err, "token")
			gone, err := call[subscriberv1.UnsubscribeRequest, subscriberv1.UnsubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Unsubscribe_FullMethodName, p.opts,
				&subscriberv1.UnsubscribeRequest{Token: w.mailLink(ctx, email, "unsubscribe")}, nil)
			if err != nil || gone.GetEmail() != email {
				t.Fatalf("Unsubscribe = %v, %v; want %s", gone, err, email)
			}
			if got := w.state(ctx, email); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED {
				t.Errorf("state after Unsubscribe = %v, want UNSUBSCRIBED", got)
			}
		})
	}
}

// TestOperatorRPCsRefusedOverBrowserProtocols calls every OPERATOR and
// INTERNAL RPC over the browser protocols with the admin token: each is
// unimplemented there (HTTP 404), and the state proves nothing ran.
func TestOperatorRPCsRefusedOverBrowserProtocols(t *testing.T) {
	w := startWorld(t)
	ctx := ctxT(t)
	admin := http.Header{"Authorization": {"Bearer " + adminToken}}
	sub, dig, snd := w.subscriberURL(), w.digestURL(), "http://"+w.addrs.SenderHTTP
	type attempt struct {
		name string
		call func(opts []connect.ClientOption) error
	}
	attempts := []attempt{
		{"GetSubscriber", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.GetSubscriberRequest, subscriberv1.GetSubscriberResponse](ctx, sub, subscriberv1.SubscriberService_GetSubscriber_FullMethodName, o, &subscriberv1.GetSubscriberRequest{Email: "a@example.org"}, admin)
			return err
		}},
		{"ListSubscribers", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.ListSubscribersRequest, subscriberv1.ListSubscribersResponse](ctx, sub, subscriberv1.SubscriberService_ListSubscribers_FullMethodName, o, &subscriberv1.ListSubscribersRequest{}, admin)
			return err
		}},
		{"ListDueSubscribers", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.ListDueSubscribersRequest, subscriberv1.ListDueSubscribersResponse](ctx, sub, subscriberv1.SubscriberService_ListDueSubscribers_FullMethodName, o, &subscriberv1.ListDueSubscribersRequest{}, http.Header{"Authorization": {"Bearer " + serviceToken}})
			return err
		}},
		{"ExportSubscriber", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.ExportSubscriberRequest, subscriberv1.ExportSubscriberResponse](ctx, sub, subscriberv1.SubscriberService_ExportSubscriber_FullMethodName, o, &subscriberv1.ExportSubscriberRequest{Email: "a@example.org"}, admin)
			return err
		}},
		{"DeleteSubscriber", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.DeleteSubscriberRequest, subscriberv1.DeleteSubscriberResponse](ctx, sub, subscriberv1.SubscriberService_DeleteSubscriber_FullMethodName, o, &subscriberv1.DeleteSubscriberRequest{}, admin)
			return err
		}},
		{"Suppress", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.SuppressRequest, subscriberv1.SuppressResponse](ctx, sub, subscriberv1.SubscriberService_Suppress_FullMethodName, o, &subscriberv1.SuppressRequest{}, admin)
			return err
		}},
		{"RecordDeliveryFailure", func(o []connect.ClientOption) error {
			_, err := call[subscriberv1.RecordDeliveryFailureRequest, subscriberv1.RecordDeliveryFailureResponse](ctx, sub, subscriberv1.SubscriberService_RecordDeliveryFailure_FullMethodName, o, &subscriberv1.RecordDeliveryFailureRequest{}, http.Header{"Authorization": {"Bearer " + serviceToken}})
			return err
		}},
		{"ImportPapers", func(o []connect.ClientOption) error {
			_, err := call[digestv1.ImportPapersRequest, digestv1.ImportPapersResponse](ctx, dig, "/paperroute.digest.v1.DigestService/ImportPapers", o,
				&digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: sample.Papers}, admin)
			return err
		}},
		{"RunDigest", func(o []connect.ClientOption) error {
			_, err := call[digestv1.RunDigestRequest, digestv1.RunDigestResponse](ctx, dig, "/paperroute.digest.v1.DigestService/RunDigest", o, &digestv1.RunDigestRequest{Edition: "2026-06-12"}, admin)
			return err
		}},
		{"ListPapers", func(o []connect.ClientOption) error {
			_, err := call[digestv1.ListPapersRequest, digestv1.ListPapersResponse](ctx, dig, "/paperroute.digest.v1.DigestService/ListPapers", o, &digestv1.ListPapersRequest{}, admin)
			return err
		}},
		{"sender GetQueueStats", func(o []connect.ClientOption) error {
			_, err := call[digestv1.ListTopicsRequest, digestv1.ListTopicsResponse](ctx, snd, "/paperroute.sender.v1.SenderService/GetQueueStats", o, &digestv1.ListTopicsRequest{}, admin)
			return err
		}},
	}
	for _, p := range protocols {
		for _, a := range attempts {
			t.Run(p.name+"/"+a.name, func(t *testing.T) {
				if err := a.call(p.opts); connect.CodeOf(err) != connect.CodeUnimplemented {
					t.Errorf("%s over %s with credentials = %v, want unimplemented (HTTP 404)", a.name, p.name, err)
				}
			})
		}
	}
	// The refused ImportPapers stored nothing, and the refused RunDigest
	// started no run: the native gRPC port shows both empty.
	papers, err := w.dig.ListPapers(ctx, &digestv1.ListPapersRequest{})
	if err != nil || len(papers.GetPapers()) != 0 {
		t.Errorf("after refused ImportPapers: %d papers, %v; want none", len(papers.GetPapers()), err)
	}
	runs, err := w.dig.ListDigestRuns(ctx, &digestv1.ListDigestRunsRequest{})
	if err != nil || len(runs.GetRuns()) != 0 {
		t.Errorf("after refused RunDigest: %d runs, %v; want none", len(runs.GetRuns()), err)
	}
}

// rawPost sends what a browser's fetch sends for a Connect JSON call.
func rawPost(t *testing.T, method, target, origin, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestBrowserCORS checks what a browser on the front page's origin, and on
// any other, gets from the subscriber's HTTP port.
func TestBrowserCORS(t *testing.T) {
	w := startFrontWorld(t)
	ctx := ctxT(t)
	subscribe := w.subscriberURL() + subscriberv1.SubscriberService_Subscribe_FullMethodName
	front, evil := w.digestURL(), "https://evil.example"

	t.Run("preflight from the front page", func(t *testing.T) {
		resp, _ := rawPost(t, http.MethodOptions, subscribe, front, "", map[string]string{
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,connect-protocol-version",
		})
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != front ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "connect-protocol-version") {
			t.Errorf("preflight = %d %v; want 204 allowing %s to POST with Connect's headers", resp.StatusCode, h, front)
		}
		if strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Error("preflight allows the Authorization header; browsers must not send credentials")
		}
	})

	t.Run("the front page opened as localhost", func(t *testing.T) {
		local := "http://localhost:" + w.addrs.DigestHTTP[strings.LastIndexByte(w.addrs.DigestHTTP, ':')+1:]
		resp, _ := rawPost(t, http.MethodOptions, subscribe, local, "", map[string]string{"Access-Control-Request-Method": "POST"})
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != local {
			t.Errorf("preflight from %s = %d; want 204 (the dev stack allows both names of the loopback page)", local, resp.StatusCode)
		}
	})

	t.Run("field violations reach the page", func(t *testing.T) {
		resp, body := rawPost(t, http.MethodPost, subscribe, front, `{"email":"nope","consentTextVersion":"v1"}`, nil)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Access-Control-Allow-Origin") != front {
			t.Fatalf("invalid Subscribe = %d, allow-origin %q; want 400 readable by %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), front)
		}
		var e struct {
			Code    string
			Message string
			Details []struct{ Type, Value string }
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("error body %s: %v", body, err)
		}
		if e.Code != "invalid_argument" || len(e.Details) == 0 || e.Details[0].Type != "google.rpc.BadRequest" || e.Details[0].Value == "" {
			t.Errorf("error body = %s; want invalid_argument with a google.rpc.BadRequest detail", body)
		}
	})

	t.Run("another origin", func(t *testing.T) {
		resp, _ := rawPost(t, http.MethodOptions, subscribe, evil, "", map[string]string{"Access-Control-Request-Method": "POST"})
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s = %d allow-origin %q; want 403 and no allow-origin", evil, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp, _ = rawPost(t, http.MethodPost, subscribe, evil, `{"email":"victim@example.org","consentTextVersion":"v1"}`, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("Subscribe from %s = %d, want 403", evil, resp.StatusCode)
		}
		// The digest allows no other origin at all (DIGEST_ALLOWED_ORIGINS unset).
		resp, _ = rawPost(t, http.MethodPost, w.digestURL()+"/paperroute.digest.v1.DigestService/ListTopics", evil, `{}`, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("ListTopics from %s = %d, want 403", evil, resp.StatusCode)
		}
		// The refused sign-up mailed nothing: a witness's sign-up after it
		// is mailed, and by then the victim has had nothing.
		resp, body := rawPost(t, http.MethodPost, subscribe, front, `{"email":"witness@example.org","consentTextVersion":"v1"}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("witness Subscribe = %d %s", resp.StatusCode, body)
		}
		w.mailLink(ctx, "witness@example.org", "confirm")
		for _, m := range w.catcher.Messages() {
			if mailcatcher.To("victim@example.org")(m) {
				t.Error("the sign-up refused for its origin sent a mail")
			}
		}
	})
}

// TestRateLimitReachesTheBrowser spends the per-address sign-up limit and
// checks that every browser protocol then gets resource_exhausted with a
// google.rpc.RetryInfo saying when to come back, and that the JSON a
// page's fetch reads carries it.
func TestRateLimitReachesTheBrowser(t *testing.T) {
	w := startFrontWorldWith(t, map[string]string{"SUBSCRIBER_LIMIT_PER_IP": "1/1h"})
	ctx := ctxT(t)
	sub := w.subscriberURL()
	if _, err := call[subscriberv1.SubscribeRequest, subscriberv1.SubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Subscribe_FullMethodName, protocols[0].opts,
		&subscriberv1.SubscribeRequest{Email: "first@example.org", ConsentTextVersion: "v1"}, nil); err != nil {
		t.Fatalf("first Subscribe: %v", err)
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			_, err := call[subscriberv1.SubscribeRequest, subscriberv1.SubscribeResponse](ctx, sub, subscriberv1.SubscriberService_Subscribe_FullMethodName, p.opts,
				&subscriberv1.SubscribeRequest{Email: "second@example.org", ConsentTextVersion: "v1"}, nil)
			var cerr *connect.Error
			if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted {
				t.Fatalf("second Subscribe = %v, want resource_exhausted", err)
			}
			var delay time.Duration
			for _, d := range cerr.Details() {
				if m, derr := d.Value(); derr == nil {
					if ri, ok := m.(*errdetails.RetryInfo); ok {
						delay = ri.GetRetryDelay().AsDuration()
					}
				}
			}
			if delay <= 0 || delay > time.Hour+time.Minute {
				t.Errorf("RetryInfo retry_delay = %v, want the time until the limit allows another (≤ 1h)", delay)
			}
		})
	}
	resp, body := rawPost(t, http.MethodPost, sub+subscriberv1.SubscriberService_Subscribe_FullMethodName, w.digestURL(), `{"email":"third@example.org","consentTextVersion":"v1"}`, nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"code":"resource_exhausted"`) || !strings.Contains(string(body), `"type":"google.rpc.RetryInfo"`) {
		t.Errorf("rate-limited Subscribe as fetch sees it = %d %s; want 429 with a google.rpc.RetryInfo detail", resp.StatusCode, body)
	}
}
