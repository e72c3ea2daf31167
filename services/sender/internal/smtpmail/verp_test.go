package smtpmail_test

import (
	"context"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

// With VERP the envelope sender names the message.
func TestVERPEnvelopeSender(t *testing.T) {
	for _, verp := range []bool{false, true} {
		mc := catcher(t)
		c := dial(t, mailer(t, mc.Addr(), func(c *smtpmail.Config) { c.VERP = verp }))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		id := queue.MessageID("verp")
		err := c.Send(ctx, &delivery.Mail{MessageID: id, To: "ada@example.com", Lane: queue.LaneTransactional,
			Rendered: mailtemplate.Rendered{Subject: "s", Text: "t"}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		msgs := mc.Messages()
		if len(msgs) != 1 {
			t.Fatalf("%d messages", len(msgs))
		}
		want := "digest@paperroute.example"
		if verp {
			want = "digest+" + id + "@paperroute.example"
		}
		if msgs[0].From != want {
			t.Errorf("VERP %v: envelope sender %q, want %q", verp, msgs[0].From, want)
		}
	}
}
