package peers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/internal/peers"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

const serviceToken = "peers-test-token"

func newMailer(t *testing.T, fake *sendertest.Fake, token string) *peers.Sender {
	t.Helper()
	conn, err := grpcclient.New(fake.Addr(), token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	m, err := peers.NewSender(senderv1.NewSenderServiceClient(conn), 168*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfirmationMail(t *testing.T) {
	fake := sendertest.Start(t, serviceToken)
	m := newMailer(t, fake, serviceToken)
	// '&', '\'' and '{' are all legal in a local part.
	const to = "o'neil&{{confirm_url}}@example.com"
	const link = "https://news.example.com/confirm?token=k1.AQE.abc"
	err := m.SendConfirmation(context.Background(), subscription.ConfirmationMail{IdempotencyKey: "confirm:X:1", To: to, ConfirmURL: link})
	if err != nil {
		t.Fatal(err)
	}
	mails := fake.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	got := mails[0]
	if diff := cmp.Diff(map[string]string{"email": to, "confirm_url": link}, got.Variables); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
	if got.Lane != senderv1.Lane_LANE_TRANSACTIONAL || got.ListUnsubscribeURL != "" || got.To != to || got.IdempotencyKey != "confirm:X:1" {
		t.Errorf("envelope = %+v", got)
	}
	for _, want := range []string{to, link, "7 days"} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, got.Text)
		}
	}
	for _, want := range []string{`<a href="` + link + `"`, "o&#39;neil&amp;{{confirm_url}}@example.com"} {
		if !strings.Contains(got.HTML, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, got.HTML)
		}
	}
	if strings.Contains(got.HTML, "o'neil&{{") {
		t.Errorf("HTML part has the address unescaped:\n%s", got.HTML)
	}
}

func TestAlreadySubscribedMail(t *testing.T) {
	fake := sendertest.Start(t, serviceToken)
	m := newMailer(t, fake, serviceToken)
	const link = "https://news.example.com/unsubscribe?token=k1.AQI.abc"
	const manage = "https://news.example.com/preferences?token=k1.AQM.def"
	if err := m.SendAlreadySubscribed(context.Background(), subscription.AlreadySubscribedMail{IdempotencyKey: "already:X:1", To: "ada@example.com", UnsubscribeURL: link, ManageURL: manage}); err != nil {
		t.Fatal(err)
	}
	got := fake.Mails()[0]
	if !strings.Contains(got.Subject, "already subscribed") || !strings.Contains(got.Text, link) || !strings.Contains(got.HTML, link) {
		t.Errorf("mail lacks the unsubscribe link: %+v", got)
	}
	if !strings.Contains(got.Text, manage) || !strings.Contains(got.HTML, `href="`+manage+`"`) {
		t.Errorf("mail lacks the manage link: %+v", got)
	}
}

func TestSameKeySendsOnce(t *testing.T) {
	fake := sendertest.Start(t, serviceToken)
	m := newMailer(t, fake, serviceToken)
	for range 3 {
		if err := m.SendConfirmation(context.Background(), subscription.ConfirmationMail{IdempotencyKey: "confirm:X:1", To: "a@example.com", ConfirmURL: "https://x.example/confirm?token=t"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fake.Mails()); n != 1 {
		t.Errorf("%d mails for one key, want 1", n)
	}
}

func TestErrors(t *testing.T) {
	mail := subscription.ConfirmationMail{IdempotencyKey: "confirm:X:1", To: "a@example.com", ConfirmURL: "https://x.example/confirm?token=t"}
	t.Run("unavailable is retryable", func(t *testing.T) {
		fake := sendertest.Start(t, serviceToken)
		fake.SetUnavailable(true)
		err := newMailer(t, fake, serviceToken).SendConfirmation(context.Background(), mail)
		if !errors.Is(err, subscription.ErrMailUnavailable) {
			t.Errorf("err = %v, want ErrMailUnavailable", err)
		}
		if _, isStatus := status.FromError(err); isStatus {
			t.Errorf("err %v wraps the sender's status, which would reach our callers", err)
		}
	})
	t.Run("refused token is not retryable", func(t *testing.T) {
		fake := sendertest.Start(t, serviceToken)
		err := newMailer(t, fake, "wrong-token").SendConfirmation(context.Background(), mail)
		if err == nil || errors.Is(err, subscription.ErrMailUnavailable) {
			t.Errorf("err = %v, want a non-retryable error", err)
		}
		if _, isStatus := status.FromError(err); isStatus {
			t.Errorf("err %v wraps the sender's status", err)
		}
	})
}
