package grpcapi_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/internal/grpcapi"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// TestSubscribeAnswersAlike checks that the answer reveals nothing: new,
// pending, active, unsubscribed and suppressed addresses get byte-identical
// responses, while the mails differ as specified.
func TestSubscribeAnswersAlike(t *testing.T) {
	h := start(t)
	const (
		pending      = "pending@example.com"
		active       = "active@example.com"
		suppressed   = "suppressed@example.com"
		unsubscribed = "unsubscribed@example.com"
		fresh        = "new@example.com"
	)
	h.subscribe(t, pending)
	h.activate(t, active)
	supp := h.activate(t, suppressed)
	h.SetState(t, supp.GetId(), subscription.StateSuppressed)
	unsub := h.activate(t, unsubscribed)
	h.SetState(t, unsub.GetId(), subscription.StateUnsubscribed)
	// A new window, so that the throttle lets every mail kind through once.
	h.Clock.Advance(10 * time.Minute)
	before := map[string]int{}
	for _, a := range []string{pending, active, suppressed, unsubscribed, fresh} {
		before[a] = len(h.MailsTo(a))
	}

	var answers [][]byte
	for _, a := range []string{fresh, pending, active, suppressed, unsubscribed} {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h.subscribe(t, a))
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, b)
	}
	for i, b := range answers[1:] {
		if string(b) != string(answers[0]) {
			t.Errorf("answer %d = %q, want the same bytes as for a new address %q", i+1, b, answers[0])
		}
	}
	if got, want := h.subscribe(t, fresh).GetMessage(), grpcapi.SubscribeMessage; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}

	newMail := func(addr string) []sendertest.Mail { return h.MailsTo(addr)[before[addr]:] }
	subjects := func(ms []sendertest.Mail) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Subject)
		}
		return out
	}
	const confirmSubject = "Confirm your paperroute subscription"
	const alreadySubject = "You are already subscribed to paperroute"
	for addr, want := range map[string][]string{
		fresh:        {confirmSubject},
		pending:      {confirmSubject},
		unsubscribed: {confirmSubject},
		active:       {alreadySubject},
		suppressed:   nil,
	} {
		if diff := cmp.Diff(want, subjects(newMail(addr))); diff != "" {
			t.Errorf("mails to %s (-want +got):\n%s", addr, diff)
		}
	}
	already := newMail(active)[0]
	link, tok := testenv.Link(t, h.PublicURL, already, "unsubscribe")
	if !strings.Contains(already.Text, link) || tok == "" {
		t.Errorf("already-subscribed mail lacks an unsubscribe link:\n%s", already.Text)
	}
	for _, m := range h.Sender.Mails() {
		if m.Lane.String() != "LANE_TRANSACTIONAL" || m.ListUnsubscribeURL != "" {
			t.Errorf("mail %s: lane %v, list_unsubscribe_url %q; want TRANSACTIONAL and none", m.IdempotencyKey, m.Lane, m.ListUnsubscribeURL)
		}
	}
	if got := h.get(t, unsubscribed).GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
		t.Errorf("unsubscribed address after Subscribe is %v, want PENDING", got)
	}
	if got := h.get(t, suppressed).GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED {
		t.Errorf("suppressed address after Subscribe is %v, want SUPPRESSED", got)
	}
}

func TestSubscribeThrottlesMail(t *testing.T) {
	h := start(t)
	const addr = "often@example.com"
	for range 5 {
		h.subscribe(t, addr)
	}
	if got := len(h.MailsTo(addr)); got != 1 {
		t.Fatalf("5 sign-ups in one window sent %d mails, want 1", got)
	}
	h.Clock.Advance(10 * time.Minute)
	h.subscribe(t, addr)
	if got := len(h.MailsTo(addr)); got != 2 {
		t.Errorf("a sign-up in the next window sent %d mails in all, want 2 (a resend)", got)
	}
	sub := h.get(t, addr)
	if got, want := sub.GetConsent().GetSignupTime().AsTime(), testenv.StartTime(); !got.Equal(want) {
		t.Errorf("signup time = %v, want the first sign-up %v (a resend keeps the evidence)", got, want)
	}
}

func TestSubscribeConcurrentSameAddress(t *testing.T) {
	h := start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: "race@example.com", ConsentTextVersion: "v1"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	h.Work(t)
	for err := range errs {
		if err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	}
	list, err := h.client.ListSubscribers(admin(), &subscriberv1.ListSubscribersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(list.GetSubscribers()); got != 1 {
		t.Errorf("%d records after 20 concurrent sign-ups, want 1", got)
	}
	var recs int
	for _, k := range h.SubKeys(t) {
		if strings.HasPrefix(k, "sub:{s}:rec:") {
			recs++
		}
	}
	if recs != 1 {
		t.Errorf("%d record keys, want 1: %v", recs, h.SubKeys(t))
	}
	if got := len(h.MailsTo("race@example.com")); got != 1 {
		t.Errorf("%d confirmation mails, want 1", got)
	}
}

// TestSubscribeSenderUnavailable checks that a sender outage does not reach
// the reader: Subscribe answers as always, the sign-up is recorded, and the
// mail goes out once the sender is back.
func TestSubscribeSenderUnavailable(t *testing.T) {
	h := start(t)
	h.Sender.SetUnavailable(true)
	_, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: "later@example.com", ConsentTextVersion: "v1"})
	if err != nil {
		t.Fatalf("Subscribe while the sender is down: %v", err)
	}
	if n := h.Work(t); n != 0 {
		t.Errorf("%d jobs succeeded while the sender was down", n)
	}
	if got := h.get(t, "later@example.com").GetState(); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
		t.Errorf("state = %v, want PENDING", got)
	}
	if n := len(h.Sender.Mails()); n != 0 {
		t.Fatalf("%d mails accepted while unavailable", n)
	}
	h.Sender.SetUnavailable(false)
	if n := h.Work(t); n != 1 {
		t.Errorf("retry did %d jobs, want 1", n)
	}
	if n := len(h.MailsTo("later@example.com")); n != 1 {
		t.Errorf("retry sent %d mails, want 1", n)
	}
}

func TestSubscribeInvalid(t *testing.T) {
	h := start(t)
	tests := []struct {
		name   string
		req    *subscriberv1.SubscribeRequest
		fields []string
	}{
		{"empty email", &subscriberv1.SubscribeRequest{}, []string{"email"}},
		{"display name", &subscriberv1.SubscribeRequest{Email: "Ada <ada@example.com>"}, []string{"email"}},
		{"CRLF injection", &subscriberv1.SubscribeRequest{Email: "ada@example.com\r\nBcc: everyone@example.org"}, []string{"email"}},
		{"300-char address", &subscriberv1.SubscribeRequest{Email: strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("d", 58)+".", 4) + "com"}, []string{"email"}},
		{"missing TLD", &subscriberv1.SubscribeRequest{Email: "ada@localhost"}, []string{"email"}},
		{"unicode local part", &subscriberv1.SubscribeRequest{Email: "jürgen@example.com"}, []string{"email"}},
		{"two ats", &subscriberv1.SubscribeRequest{Email: "a@b@c"}, []string{"email"}},
		{"1 MB email", &subscriberv1.SubscribeRequest{Email: strings.Repeat("a", 1<<20) + "@example.com"}, []string{"email"}},
		{"long consent version", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ConsentTextVersion: strings.Repeat("v", 65)}, []string{"consent_text_version"}},
		{"consent version with newline", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ConsentTextVersion: "v1\nX-Evil: 1"}, []string{"consent_text_version"}},
		{"bad client ip", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ClientIp: "999.1.1.1"}, []string{"client_ip"}},
		{"client ip with zone", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ClientIp: "fe80::1%eth0"}, []string{"client_ip"}},
		{"long user agent", &subscriberv1.SubscribeRequest{Email: "ok@example.com", UserAgent: strings.Repeat("u", 513)}, []string{"user_agent"}},
		{"user agent with CR", &subscriberv1.SubscribeRequest{Email: "ok@example.com", UserAgent: "Mozilla\r\nX: y"}, []string{"user_agent"}},
		{"everything wrong", &subscriberv1.SubscribeRequest{Email: "nope", ConsentTextVersion: strings.Repeat("v", 65), ClientIp: "x", UserAgent: "\x00"}, []string{"email", "consent_text_version", "client_ip", "user_agent"}},
		{"missing consent version", &subscriberv1.SubscribeRequest{Email: "ok@example.com", ConsentTextVersion: "-"}, []string{"consent_text_version"}},
		{"unknown topic", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Topics: []string{"llm", "astrology"}}, []string{"topics[1]"}},
		{"too many topics", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Topics: make([]string, subscription.MaxTopics+1)}, []string{"topics"}},
		{"too many keywords", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Keywords: make([]string, subscription.MaxKeywords+1)}, []string{"keywords"}},
		{"long keyword", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Keywords: []string{"ok", strings.Repeat("k", 65)}}, []string{"keywords[1]"}},
		{"keyword with NUL", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Keywords: []string{"a\x00b"}}, []string{"keywords[0]"}},
		{"10 KB keyword", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Keywords: []string{strings.Repeat("k", 10<<10)}}, []string{"keywords[0]"}},
		{"hour 24", &subscriberv1.SubscribeRequest{Email: "ok@example.com", DeliveryHour: proto.Int32(24)}, []string{"delivery_hour"}},
		{"negative hour", &subscriberv1.SubscribeRequest{Email: "ok@example.com", DeliveryHour: proto.Int32(-1)}, []string{"delivery_hour"}},
		{"unknown time zone", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Timezone: "Mars/Olympus_Mons"}, []string{"timezone"}},
		{"time zone as a path", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Timezone: "../../etc/passwd"}, []string{"timezone"}},
		{"Local time zone", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Timezone: "Local"}, []string{"timezone"}},
		{"weekly without a day", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Frequency: subscriberv1.Frequency_FREQUENCY_WEEKLY}, []string{"weekly_day"}},
		{"unknown frequency", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Frequency: 9}, []string{"frequency"}},
		{"bad locale", &subscriberv1.SubscribeRequest{Email: "ok@example.com", Locale: "en_US\r\n"}, []string{"locale"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch tt.req.ConsentTextVersion {
			case "":
				tt.req.ConsentTextVersion = "v1"
			case "-":
				tt.req.ConsentTextVersion = ""
			}
			_, err := h.client.Subscribe(context.Background(), tt.req)
			wantViolations(t, err, tt.fields...)
			if keys := h.SubKeys(t); len(keys) != 0 {
				t.Errorf("Redis holds %v after a rejected request", keys)
			}
			if n := h.Sender.Calls(); n != 0 {
				t.Errorf("sender called %d times", n)
			}
		})
	}
}

func TestSubscribeNormalisesAddress(t *testing.T) {
	h := start(t)
	h.subscribe(t, "Hans@BÜCHER.de")
	h.subscribe(t, "hans@bücher.DE") // same mailbox, other spelling
	list, err := h.client.ListSubscribers(admin(), &subscriberv1.ListSubscribersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetSubscribers()) != 1 {
		t.Fatalf("%d records, want 1: %v", len(list.GetSubscribers()), list)
	}
	sub := list.GetSubscribers()[0]
	if got, want := sub.GetEmail(), "Hans@xn--bcher-kva.de"; got != want {
		t.Errorf("stored email = %q, want %q", got, want)
	}
	if got := h.Sender.Mails()[0].To; got != "Hans@xn--bcher-kva.de" {
		t.Errorf("mail sent to %q, want the punycode address", got)
	}
	for _, k := range h.SubKeys(t) {
		if strings.Contains(strings.ToLower(k), "hans") || strings.Contains(k, "bcher") {
			t.Errorf("key %q holds the address in plain text", k)
		}
	}
	if got := h.get(t, "HANS@bücher.de").GetId(); got != sub.GetId() {
		t.Errorf("GetSubscriber by another spelling = %q, want %q", got, sub.GetId())
	}
}
