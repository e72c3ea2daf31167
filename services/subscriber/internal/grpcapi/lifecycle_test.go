package grpcapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

const (
	statePending      = subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING
	stateActive       = subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE
	stateUnsubscribed = subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED
	stateSuppressed   = subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED
)

// inState makes email a subscriber in state through the API.
func (h *harness) inState(t *testing.T, email string, state subscriberv1.SubscriberState) *subscriberv1.Subscriber {
	t.Helper()
	switch state {
	case statePending:
		h.subscribe(t, email)
		return h.get(t, email)
	case stateActive:
		return h.activate(t, email)
	case stateUnsubscribed:
		sub := h.activate(t, email)
		if _, err := h.client.Unsuppress(admin(), &subscriberv1.UnsuppressRequest{Id: sub.GetId()}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Unsubscribe(context.Background(), &subscriberv1.UnsubscribeRequest{Token: h.manageToken(t, sub)}); err != nil {
			t.Fatal(err)
		}
	case stateSuppressed:
		sub := h.activate(t, email)
		if _, err := h.client.Suppress(admin(), &subscriberv1.SuppressRequest{Id: sub.GetId(), Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return h.get(t, email)
}

// manageToken returns a manage token of sub, from ListDueSubscribers.
func (h *harness) manageToken(t *testing.T, sub *subscriberv1.Subscriber) string {
	t.Helper()
	res, err := h.client.ListDueSubscribers(internal(), &subscriberv1.ListDueSubscribersRequest{DueTime: timestamppb.New(sevenUTC), PageSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.GetSubscribers() {
		if d.GetSubscriberId() == sub.GetId() {
			if !strings.HasPrefix(d.GetManageUrl(), h.PublicURL+"/preferences?token=") {
				t.Fatalf("manage url = %q", d.GetManageUrl())
			}
			return tokenOf(t, d.GetManageUrl())
		}
	}
	t.Fatalf("%s is not due", sub.GetEmail())
	return ""
}

// TestTransitions is the state table: every operation from every state.
func TestTransitions(t *testing.T) {
	type op struct {
		name string
		do   func(h *harness, sub *subscriberv1.Subscriber) error
	}
	subscribe := op{"Subscribe", func(h *harness, sub *subscriberv1.Subscriber) error {
		_, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{Email: sub.GetEmail(), ConsentTextVersion: "v2"})
		return err
	}}
	suppress := op{"Suppress", func(h *harness, sub *subscriberv1.Subscriber) error {
		_, err := h.client.Suppress(admin(), &subscriberv1.SuppressRequest{Email: sub.GetEmail()})
		return err
	}}
	unsuppress := op{"Unsuppress", func(h *harness, sub *subscriberv1.Subscriber) error {
		_, err := h.client.Unsuppress(admin(), &subscriberv1.UnsuppressRequest{Id: sub.GetId()})
		return err
	}}
	bounce := op{"RecordDeliveryFailure", func(h *harness, sub *subscriberv1.Subscriber) error {
		_, err := h.client.RecordDeliveryFailure(internal(), &subscriberv1.RecordDeliveryFailureRequest{
			Email: sub.GetEmail(), Kind: subscriberv1.DeliveryFailureKind_DELIVERY_FAILURE_KIND_COMPLAINT,
		})
		return err
	}}
	tests := []struct {
		from subscriberv1.SubscriberState
		op   op
		want subscriberv1.SubscriberState
		mail string // subject prefix of the mail the op causes; "" none
	}{
		{statePending, subscribe, statePending, "Confirm"},
		{stateActive, subscribe, stateActive, "You are already subscribed"},
		{stateUnsubscribed, subscribe, statePending, "Confirm"},
		{stateSuppressed, subscribe, stateSuppressed, ""},
		{statePending, suppress, stateSuppressed, ""},
		{stateActive, suppress, stateSuppressed, ""},
		{stateUnsubscribed, suppress, stateSuppressed, ""},
		{stateSuppressed, suppress, stateSuppressed, ""},
		{stateSuppressed, unsuppress, stateUnsubscribed, ""},
		{stateActive, unsuppress, stateActive, ""},
		{stateActive, bounce, stateSuppressed, ""},
		{statePending, bounce, stateSuppressed, ""},
		{stateSuppressed, bounce, stateSuppressed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.from.String()+"/"+tt.op.name, func(t *testing.T) {
			h := start(t)
			const email = "ada@example.com"
			sub := h.inState(t, email, tt.from)
			h.Clock.Advance(10 * time.Minute) // a fresh mail window
			before := len(h.MailsTo(email))
			if err := tt.op.do(h, sub); err != nil {
				t.Fatal(err)
			}
			h.Work(t)
			if got := h.get(t, email).GetState(); got != tt.want {
				t.Errorf("state = %v, want %v", got, tt.want)
			}
			mails := h.MailsTo(email)[before:]
			switch {
			case tt.mail == "" && len(mails) != 0:
				t.Errorf("mails = %d (%q), want none", len(mails), mails[0].Subject)
			case tt.mail != "" && (len(mails) != 1 || !strings.HasPrefix(mails[0].Subject, tt.mail)):
				t.Errorf("mails = %v, want one %q", mails, tt.mail)
			}
		})
	}
}

func TestPreferencesByManageLink(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	sub := h.activate(t, "ada@example.com")
	tok := h.manageToken(t, sub)
	got, err := h.client.GetPreferences(ctx, &subscriberv1.GetPreferencesRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetEmail() != "ada@example.com" || got.GetPreferences().GetTimezone() != "UTC" {
		t.Errorf("GetPreferences = %v", got)
	}
	want := &subscriberv1.Preferences{
		Topics: []string{"rl", "llm"}, Keywords: []string{"world models"}, Frequency: subscriberv1.Frequency_FREQUENCY_WEEKLY,
		WeeklyDay: subscriberv1.Weekday_WEEKDAY_SUNDAY, DeliveryHour: 8, Timezone: "Asia/Kathmandu", Locale: "de-CH",
	}
	res, err := h.client.UpdatePreferences(ctx, &subscriberv1.UpdatePreferencesRequest{Token: tok, Preferences: want})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(want, res.GetPreferences()) || !proto.Equal(want, h.get(t, "ada@example.com").GetPreferences()) {
		t.Errorf("preferences = %v, want %v", res.GetPreferences(), want)
	}
	// Sunday 2026-06-14 08:00 in Kathmandu (UTC+5:45) is 02:15 UTC.
	due, err := h.client.ListDueSubscribers(internal(), &subscriberv1.ListDueSubscribersRequest{DueTime: timestamppb.New(time.Date(2026, 6, 14, 2, 15, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if len(due.GetSubscribers()) != 1 || !proto.Equal(due.GetSubscribers()[0].GetPreferences(), want) {
		t.Errorf("due on Sunday 08:00 Kathmandu = %v", due.GetSubscribers())
	}
	// Not due on Saturday, nor at the old slot.
	for _, at := range []time.Time{time.Date(2026, 6, 13, 2, 15, 0, 0, time.UTC), sevenUTC} {
		due, err := h.client.ListDueSubscribers(internal(), &subscriberv1.ListDueSubscribersRequest{DueTime: timestamppb.New(at)})
		if err != nil {
			t.Fatal(err)
		}
		if len(due.GetSubscribers()) != 0 {
			t.Errorf("due at %v: %v", at, due.GetSubscribers())
		}
	}

	// Bad values name the field; the record does not change.
	before := h.Dump(t)
	_, err = h.client.UpdatePreferences(ctx, &subscriberv1.UpdatePreferencesRequest{Token: tok, Preferences: &subscriberv1.Preferences{
		Topics: []string{"astrology"}, DeliveryHour: 25, Timezone: "Nowhere/Land",
	}})
	wantViolations(t, err, "preferences.topics[0]", "preferences.delivery_hour", "preferences.timezone")
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Errorf("Redis changed (-before +after):\n%s", diff)
	}
	// Wrong-purpose tokens are refused: the confirm token is not a manage link.
	_, err = h.client.GetPreferences(ctx, &subscriberv1.GetPreferencesRequest{Token: h.confirmToken(t, "bob@example.com")})
	wantViolations(t, err, "token")
	// Tampered and truncated tokens are refused.
	for _, bad := range []string{tok[:len(tok)-3], tok + "x", strings.Replace(tok, ".", "..", 1), ""} {
		_, err = h.client.GetPreferences(ctx, &subscriberv1.GetPreferencesRequest{Token: bad})
		wantViolations(t, err, "token")
	}
}

func TestRevokeLinksAndErase(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	sub := h.activate(t, "ada@example.com")
	tok := h.manageToken(t, sub)
	if _, err := h.client.RevokeLinks(admin(), &subscriberv1.RevokeLinksRequest{Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.GetPreferences(ctx, &subscriberv1.GetPreferencesRequest{Token: tok})
	wantViolations(t, err, "token")
	fresh := h.manageToken(t, sub)
	if _, err := h.client.GetPreferences(ctx, &subscriberv1.GetPreferencesRequest{Token: fresh}); err != nil {
		t.Fatalf("a link issued after the revocation: %v", err)
	}

	// Export: everything held, as JSON, consent evidence included.
	exp, err := h.client.ExportSubscriber(admin(), &subscriberv1.ExportSubscriberRequest{Id: sub.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Subscriber struct {
			Email   string `json:"email"`
			Consent struct {
				Version  string `json:"consent_text_version"`
				SignupIP string `json:"signup_ip"`
			} `json:"consent"`
			Preferences struct {
				Timezone string `json:"timezone"`
			} `json:"preferences"`
		} `json:"subscriber"`
	}
	if err := json.Unmarshal([]byte(exp.GetJson()), &doc); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, exp.GetJson())
	}
	if doc.Subscriber.Email != "ada@example.com" || doc.Subscriber.Consent.Version != "v1" || doc.Subscriber.Consent.SignupIP != "192.0.2.7" || doc.Subscriber.Preferences.Timezone != "UTC" {
		t.Errorf("export = %s", exp.GetJson())
	}

	// Erase: personal data gone, links dead, Get is NotFound.
	if _, err := h.client.DeleteSubscriber(admin(), &subscriberv1.DeleteSubscriberRequest{Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.GetSubscriber(admin(), &subscriberv1.GetSubscriberRequest{Email: "ada@example.com"})
	wantCode(t, err, codes.NotFound)
	_, err = h.client.GetPreferences(ctx, &subscriberv1.GetPreferencesRequest{Token: fresh})
	wantViolations(t, err, "token")
	for _, k := range h.SubKeys(t) {
		if strings.Contains(k, sub.GetId()) {
			t.Errorf("key %s survives the erasure", k)
		}
	}
	// Re-subscribing works like a new address.
	h.subscribe(t, "ada@example.com")
	if got := h.get(t, "ada@example.com").GetState(); got != statePending {
		t.Errorf("state after re-subscribing = %v", got)
	}
}

// TestEraseKeepsSuppression checks that an erased suppressed address stays
// suppressed: a later sign-up sends nothing and creates nothing.
func TestEraseKeepsSuppression(t *testing.T) {
	h := start(t)
	h.inState(t, "gone@example.com", stateSuppressed)
	if _, err := h.client.DeleteSubscriber(admin(), &subscriberv1.DeleteSubscriberRequest{Email: "gone@example.com"}); err != nil {
		t.Fatal(err)
	}
	keys := h.SubKeys(t)
	h.Clock.Advance(time.Hour)
	before := len(h.MailsTo("gone@example.com"))
	h.subscribe(t, "Gone@Example.com")
	if n := len(h.MailsTo("Gone@example.com")) + len(h.MailsTo("gone@example.com")) - before; n != 0 {
		t.Errorf("%d mails to an erased suppressed address", n)
	}
	if diff := cmp.Diff(keys, h.SubKeys(t)); diff != "" {
		t.Errorf("keys changed (-before +after):\n%s", diff)
	}
	for _, k := range keys {
		if strings.Contains(strings.ToLower(k), "gone") {
			t.Errorf("key %q holds the address", k)
		}
	}
	// Unsuppress by address removes the marker.
	_, err := h.client.Unsuppress(admin(), &subscriberv1.UnsuppressRequest{Email: "gone@example.com"})
	wantCode(t, err, codes.NotFound)
	h.subscribe(t, "gone@example.com")
	if got := h.get(t, "gone@example.com").GetState(); got != statePending {
		t.Errorf("state = %v after unsuppressing the erased address", got)
	}
}

func TestPurgeExpiredPending(t *testing.T) {
	h := start(t)
	h.subscribe(t, "old@example.com")
	h.Clock.Advance(6 * 24 * time.Hour)
	h.subscribe(t, "young@example.com")
	h.activate(t, "active@example.com")
	h.Clock.Advance(24*time.Hour + time.Second)
	n, err := h.Service.PurgeExpired(context.Background(), 100)
	if err != nil || n != 1 {
		t.Fatalf("PurgeExpired = %d, %v; want 1", n, err)
	}
	_, err = h.client.GetSubscriber(admin(), &subscriberv1.GetSubscriberRequest{Email: "old@example.com"})
	wantCode(t, err, codes.NotFound)
	for _, a := range []string{"young@example.com", "active@example.com"} {
		h.get(t, a)
	}
}

func TestClientDataRetention(t *testing.T) {
	h := startWith(t, testenv.Options{ClientDataRetention: 30 * 24 * time.Hour})
	h.activate(t, "ada@example.com")
	h.Clock.Advance(29 * 24 * time.Hour)
	if n, err := h.Service.DropOldClientData(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("DropOldClientData before the retention = %d, %v", n, err)
	}
	h.Clock.Advance(2 * 24 * time.Hour)
	if n, err := h.Service.DropOldClientData(context.Background(), 100); err != nil || n != 1 {
		t.Fatalf("DropOldClientData = %d, %v; want 1", n, err)
	}
	c := h.get(t, "ada@example.com").GetConsent()
	if c.GetSignupIp() != "" || c.GetSignupUserAgent() != "" || c.GetConsentTextVersion() != "v1" || c.GetSignupTime() == nil {
		t.Errorf("consent after retention = %v, want IP/UA gone, the rest kept", c)
	}
}

func TestListSubscribersByTopic(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	for _, c := range []struct {
		email  string
		topics []string
	}{{"a@example.com", []string{"llm"}}, {"b@example.com", []string{"rl", "llm"}}, {"c@example.com", nil}} {
		h.Clock.Advance(time.Millisecond) // ids in sign-up order
		if _, err := h.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: c.email, ConsentTextVersion: "v1", Topics: c.topics}); err != nil {
			t.Fatal(err)
		}
	}
	h.Work(t)
	res, err := h.client.ListSubscribers(admin(), &subscriberv1.ListSubscribersRequest{Topic: "llm", State: statePending})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range res.GetSubscribers() {
		got = append(got, s.GetEmail())
	}
	if diff := cmp.Diff([]string{"a@example.com", "b@example.com"}, got); diff != "" {
		t.Errorf("topic llm (-want +got):\n%s", diff)
	}
}

// TestUnsubscribeCancelsQueuedMail checks that after an unsubscribe the
// sender is asked to drop what it still holds for the address.
func TestUnsubscribeCancelsQueuedMail(t *testing.T) {
	h := start(t)
	sub := h.activate(t, "ada@example.com")
	if _, err := h.client.Unsubscribe(context.Background(), &subscriberv1.UnsubscribeRequest{Token: h.manageToken(t, sub)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Sender.Cancelled()["ada@example.com"]; ok {
		t.Fatal("cancelled before the job ran")
	}
	if n := h.Work(t); n != 1 {
		t.Fatalf("%d jobs, want the cancellation", n)
	}
	if _, ok := h.Sender.Cancelled()["ada@example.com"]; !ok {
		t.Errorf("sender cancellations = %v, want ada@example.com", h.Sender.Cancelled())
	}
}
