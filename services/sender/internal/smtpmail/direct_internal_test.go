package smtpmail

import (
	"bytes"
	"context"
	"io"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// TestTransactWithoutPipelining runs the command-by-command path (relays
// that do not announce PIPELINING) against a real SMTP server, including a
// refused recipient after which the connection is still used.
func TestTransactWithoutPipelining(t *testing.T) {
	mc, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	m, err := New(Config{Addr: mc.Addr(), TLS: TLSNone, Timeout: 5 * time.Second,
		From: &netmail.Address{Address: "digest@paperroute.example"}, MessageIDDomain: "paperroute.example"})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := m.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	c := dc.(*conn)
	if !c.pipelining {
		t.Fatal("the catcher announces PIPELINING; this test turns it off")
	}
	c.pipelining = false
	mail := func(to string) *delivery.Mail {
		return &delivery.Mail{MessageID: queue.MessageID(to), To: to, Lane: queue.LaneTransactional,
			Rendered: mailtemplate.Rendered{Subject: "s", Text: "hello\n.\n"}}
	}
	mc.SetFault(func(stage mailcatcher.Stage, arg string) error {
		if stage == mailcatcher.StageRcpt && strings.Contains(arg, "bad") {
			return &mailcatcherError{}
		}
		return nil
	})
	if err := c.Send(context.Background(), mail("bad@example.com")); err == nil {
		t.Fatal("a refused recipient was reported delivered")
	}
	if err := c.Send(context.Background(), mail("good@example.com")); err != nil {
		t.Fatal(err)
	}
	got, err := mc.WaitFor(context.Background(), mailcatcher.To("good@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := mailcatcher.Parse(got.Data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Text != "hello\r\n.\r\n" {
		t.Errorf("text = %q", p.Text)
	}
	if n := len(mc.Messages()); n != 1 {
		t.Errorf("caught %d messages, want 1", n)
	}
}

type mailcatcherError struct{}

func (*mailcatcherError) Error() string { return "550 no such user" }

// FuzzQPEncode: whatever the text, the encoding decodes back to it (line
// ends as CRLF), has no line over 76 characters and none starting with a
// dot.
func FuzzQPEncode(f *testing.F) {
	for _, s := range []string{"", "a=b", ".\n..\n", strings.Repeat("x", 200), "tail \n", "é\r\nü\r", "a\tb\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		qpEncode(&b, s)
		enc := b.String()
		for _, line := range strings.Split(enc, "\r\n") {
			if len(line) > qpMaxLine {
				t.Fatalf("line of %d: %q", len(line), line)
			}
			if strings.HasPrefix(line, ".") {
				t.Fatalf("line starts with a dot: %q", line)
			}
			if strings.ContainsAny(line, "\r\n") {
				t.Fatalf("bare CR or LF in %q", line)
			}
		}
		dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(enc)))
		if err != nil {
			t.Fatalf("decode %q: %v", enc, err)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
		if string(dec) != want {
			t.Fatalf("round trip of %q: got %q via %q", s, dec, enc)
		}
	})
}
