package smtpmail_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

func TestFailoverToTheNextRelay(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close() // the primary is down
	backup := catcher(t)
	f := smtpmail.NewFailover(mailer(t, down, nil), mailer(t, backup.Addr(), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		conn, err := f.Dial(ctx)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		err = conn.Send(ctx, &delivery.Mail{MessageID: queue.MessageID("k"), To: "a@example.com", Lane: queue.LaneTransactional,
			Rendered: mailtemplate.Rendered{Subject: "s", Text: "t"}})
		_ = conn.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Send returned after the 250, which the catcher gives once it stored
	// the message.
	if n := len(backup.Messages()); n != 2 {
		t.Fatalf("the backup relay got %d mails, want 2", n)
	}

	bothDown := smtpmail.NewFailover(mailer(t, down, nil), mailer(t, down, nil))
	if _, err := bothDown.Dial(ctx); err == nil {
		t.Error("dial with every relay down succeeded")
	}
}
