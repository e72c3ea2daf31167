package smtpmail_test

import (
	"context"
	"errors"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

func catcher(t *testing.T) *mailcatcher.Server {
	t.Helper()
	mc, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Close() })
	return mc
}

func mailer(t *testing.T, addr string, edit func(*smtpmail.Config)) *smtpmail.Mailer {
	t.Helper()
	cfg := smtpmail.Config{
		Addr:            addr,
		TLS:             smtpmail.TLSOpportunistic,
		Timeout:         5 * time.Second,
		From:            &netmail.Address{Name: "paperroute", Address: "digest@paperroute.example"},
		MessageIDDomain: "ids.paperroute.example",
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := smtpmail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func dial(t *testing.T, m *smtpmail.Mailer) delivery.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mail(to string) *delivery.Mail {
	return &delivery.Mail{
		MessageID: queue.MessageID(to), To: to, Lane: queue.LaneBulk,
		Rendered:           mailtemplate.Rendered{Subject: "Café ▲ digest", Text: "text part", HTML: "<p>html part</p>"},
		ListUnsubscribeURL: "https://paperroute.example/unsubscribe?token=" + strings.Repeat("t", 900),
	}
}

func TestSendBuildsTheMessage(t *testing.T) {
	mc := catcher(t)
	c := dial(t, mailer(t, mc.Addr(), nil))
	m := mail("reader@example.com")
	if err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !c.Reusable() {
		t.Error("connection not reusable after a delivery")
	}
	got := mc.Messages()
	if len(got) != 1 {
		t.Fatalf("caught %d messages", len(got))
	}
	p, err := mailcatcher.Parse(got[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"Subject":               {p.Subject, "Café ▲ digest"},
		"Message-ID":            {p.Header.Get("Message-ID"), "<" + m.MessageID + "@ids.paperroute.example>"},
		"List-Unsubscribe":      {p.Header.Get("List-Unsubscribe"), "<" + m.ListUnsubscribeURL + ">"},
		"List-Unsubscribe-Post": {p.Header.Get("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click"},
		"Precedence":            {p.Header.Get("Precedence"), "bulk"},
		"User-Agent":            {p.Header.Get("User-Agent"), ""},
		"Date":                  {boolString(p.Header.Get("Date") != ""), "true"},
		"parts":                 {strings.Join(p.PartOrder, ","), "text/plain,text/html"},
		"envelope":              {got[0].From + " -> " + strings.Join(got[0].To, ","), "digest@paperroute.example -> reader@example.com"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	for _, line := range strings.Split(string(got[0].Data), "\r\n") {
		if len(line) > 998 {
			t.Errorf("a line of %d characters exceeds RFC 5322's 998", len(line))
		}
	}
}

func TestSendClassifiesFailures(t *testing.T) {
	tests := []struct {
		name         string
		stage        mailcatcher.Stage
		err          error
		wantRejected bool
		wantReusable bool
	}{
		{"5xx at RCPT", mailcatcher.StageRcpt, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, true, true},
		{"5xx after DATA", mailcatcher.StageData, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "spam"}, true, true},
		{"5xx at MAIL is about us, not the message", mailcatcher.StageMail, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender refused"}, false, true},
		{"4xx at RCPT", mailcatcher.StageRcpt, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}, false, false},
		{"4xx after DATA", mailcatcher.StageData, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "closing"}, false, false},
		{"disconnect at DATA", mailcatcher.StageData, mailcatcher.ErrDisconnect, false, false},
		{"disconnect at MAIL", mailcatcher.StageMail, mailcatcher.ErrDisconnect, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := catcher(t)
			mc.SetFault(func(stage mailcatcher.Stage, _ string) error {
				if stage == tt.stage {
					return tt.err
				}
				return nil
			})
			c := dial(t, mailer(t, mc.Addr(), nil))
			err := c.Send(context.Background(), mail("r@example.com"))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if got := errors.Is(err, delivery.ErrRejected); got != tt.wantRejected {
				t.Errorf("rejected = %v, want %v (err %v)", got, tt.wantRejected, err)
			}
			if got := c.Reusable(); got != tt.wantReusable {
				t.Errorf("reusable = %v, want %v", got, tt.wantReusable)
			}
			if tt.wantReusable {
				mc.SetFault(nil)
				if err := c.Send(context.Background(), mail("next@example.com")); err != nil {
					t.Errorf("the next message on the kept connection: %v", err)
				}
			}
		})
	}
}

func TestSendIsCutOffWhenItsContextEnds(t *testing.T) {
	mc := catcher(t)
	release := make(chan struct{})
	defer close(release)
	mc.SetFault(func(stage mailcatcher.Stage, _ string) error {
		if stage == mailcatcher.StageData {
			<-release
		}
		return nil
	})
	c := dial(t, mailer(t, mc.Addr(), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Send(ctx, mail("r@example.com"))
	if err == nil || errors.Is(err, delivery.ErrRejected) {
		t.Errorf("Send = %v, want a temporary error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Send took %v after its context ended", took)
	}
	if c.Reusable() {
		t.Error("a cut-off connection is reusable")
	}
}

func TestDialFailures(t *testing.T) {
	mc := catcher(t)
	tests := []struct {
		name    string
		edit    func(*smtpmail.Config)
		wantErr string
	}{
		{"STARTTLS required but not offered", func(c *smtpmail.Config) { c.TLS = smtpmail.TLSMandatory }, "STARTTLS"},
		{"AUTH configured but not offered", func(c *smtpmail.Config) { c.Username, c.Password = "user", "s3cret-password" }, "AUTH"},
		{"implicit TLS against plain SMTP", func(c *smtpmail.Config) { c.TLS = smtpmail.TLSImplicit; c.Timeout = time.Second }, "connect"},
		{"nothing listening", func(c *smtpmail.Config) { c.Addr = closedAddr(t) }, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mailer(t, mc.Addr(), tt.edit)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := m.Dial(ctx)
			if err == nil {
				_ = c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Dial = %v, want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret-password") {
				t.Error("the error leaks the password")
			}
		})
	}
}

func TestNoTLSAndPlainDelivery(t *testing.T) {
	mc := catcher(t)
	c := dial(t, mailer(t, mc.Addr(), func(c *smtpmail.Config) { c.TLS = smtpmail.TLSNone }))
	m := mail("r@example.com")
	m.Lane, m.ListUnsubscribeURL, m.HTML = queue.LaneTransactional, "", ""
	if err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	p, err := mailcatcher.Parse(mc.Messages()[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Get("Precedence") != "" || p.Header.Get("List-Unsubscribe") != "" || strings.Join(p.PartOrder, ",") != "text/plain" {
		t.Errorf("transactional text-only mail: Precedence %q, List-Unsubscribe %q, parts %v",
			p.Header.Get("Precedence"), p.Header.Get("List-Unsubscribe"), p.PartOrder)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	from := &netmail.Address{Address: "a@example.com"}
	for name, cfg := range map[string]smtpmail.Config{
		"no port":       {Addr: "localhost", TLS: smtpmail.TLSNone, Timeout: time.Second, From: from, MessageIDDomain: "example.com"},
		"bad port":      {Addr: "localhost:99999", TLS: smtpmail.TLSNone, Timeout: time.Second, From: from, MessageIDDomain: "example.com"},
		"bad TLS mode":  {Addr: "localhost:25", TLS: "maybe", Timeout: time.Second, From: from, MessageIDDomain: "example.com"},
		"no From":       {Addr: "localhost:25", TLS: smtpmail.TLSNone, Timeout: time.Second, MessageIDDomain: "example.com"},
		"no ID domain":  {Addr: "localhost:25", TLS: smtpmail.TLSNone, Timeout: time.Second, From: from},
		"no timeout":    {Addr: "localhost:25", TLS: smtpmail.TLSNone, From: from, MessageIDDomain: "example.com"},
		"empty address": {TLS: smtpmail.TLSNone, Timeout: time.Second, From: from, MessageIDDomain: "example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := smtpmail.New(cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Bulk mail carries the configured List-Id (RFC 2919) through both
// writers — the direct one and go-mail's for an internationalised
// address — and transactional mail carries none.
func TestListIDOnBulkMailOnly(t *testing.T) {
	mc := catcher(t)
	const listID = "Trending papers <digest.paperroute.example>"
	c := dial(t, mailer(t, mc.Addr(), func(cfg *smtpmail.Config) { cfg.ListID = listID }))
	tx := mail("tx@example.com")
	tx.Lane = queue.LaneTransactional
	for _, tc := range []struct {
		m    *delivery.Mail
		want string
	}{
		{mail("bulk@example.com"), listID},
		{mail("jürgen@example.com"), listID},
		{tx, ""},
	} {
		if err := c.Send(context.Background(), tc.m); err != nil {
			t.Fatal(err)
		}
		got, err := mc.WaitFor(context.Background(), mailcatcher.To(tc.m.To))
		if err != nil {
			t.Fatal(err)
		}
		p, err := mailcatcher.Parse(got.Data)
		if err != nil {
			t.Fatal(err)
		}
		if id := p.Header.Get("List-Id"); id != tc.want {
			t.Errorf("%s mail to %s: List-Id = %q, want %q", tc.m.Lane, tc.m.To, id, tc.want)
		}
	}
}
