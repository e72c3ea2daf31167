package mailcatcher_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/paperroute/paperroute/platform/mailcatcher"
)

const multipartMail = "From: a@example.com\r\n" +
	"To: b@example.com\r\n" +
	"Subject: =?UTF-8?q?Caf=C3=A9_digest?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=XYZ\r\n" +
	"\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Hello =E2=96=B2 118\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+SGVsbG8gPGI+d29ybGQ8L2I+PC9wPg==\r\n" +
	"--XYZ--\r\n"

func start(t *testing.T, dir string) *mailcatcher.Server {
	t.Helper()
	s, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func send(s *mailcatcher.Server, to string) error {
	c, err := smtp.Dial(s.Addr()) // plain SMTP: the catcher offers no STARTTLS
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail("a@example.com", []string{to}, strings.NewReader(multipartMail)); err != nil {
		return err
	}
	return c.Quit()
}

func TestCatchParseAndWrite(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	if err := send(s, "b@example.com"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.WaitFor(ctx, mailcatcher.To("b@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := mailcatcher.Parse(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "Café digest" {
		t.Errorf("Subject = %q", p.Subject)
	}
	if strings.TrimSpace(p.Text) != "Hello ▲ 118" {
		t.Errorf("Text = %q", p.Text)
	}
	if p.HTML != "<p>Hello <b>world</b></p>" {
		t.Errorf("HTML = %q", p.HTML)
	}
	if got := strings.Join(p.PartOrder, ","); got != "text/plain,text/html" {
		t.Errorf("PartOrder = %s", got)
	}
	eml, err := os.ReadFile(m.EMLPath)
	if err != nil || string(eml) != string(m.Data) {
		t.Errorf(".eml at %q does not hold the message: %v", m.EMLPath, err)
	}
	page, err := os.ReadFile(m.HTMLPath)
	if err != nil {
		t.Fatal(err)
	}
	// The HTML part is inside a sandboxed srcdoc, escaped, never live.
	if !strings.Contains(string(page), `srcdoc="&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;"`) || !strings.Contains(string(page), "Café digest") {
		t.Errorf("browsable page missing parts:\n%s", page)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, "")
	tests := []struct {
		name     string
		fault    mailcatcher.Fault
		wantCode int // 0: connection error
	}{
		{"temporary at RCPT", func(stage mailcatcher.Stage, _ string) error {
			if stage == mailcatcher.StageRcpt {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
			return nil
		}, 451},
		{"permanent at DATA", func(stage mailcatcher.Stage, _ string) error {
			if stage == mailcatcher.StageData {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		}, 550},
		{"disconnect at DATA", func(stage mailcatcher.Stage, _ string) error {
			if stage == mailcatcher.StageData {
				return mailcatcher.ErrDisconnect
			}
			return nil
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFault(tt.fault)
			defer s.SetFault(nil)
			before := len(s.Messages())
			err := send(s, "b@example.com")
			var smtpErr *smtp.SMTPError
			switch {
			case err == nil:
				t.Fatal("send succeeded")
			case tt.wantCode == 0 && errors.As(err, &smtpErr):
				t.Errorf("got SMTP reply %v, want a broken connection", err)
			case tt.wantCode != 0 && (!errors.As(err, &smtpErr) || smtpErr.Code != tt.wantCode):
				t.Errorf("err = %v, want code %d", err, tt.wantCode)
			}
			if len(s.Messages()) != before {
				t.Error("a failed message was kept")
			}
		})
	}
	if err := send(s, "b@example.com"); err != nil {
		t.Errorf("send after clearing faults: %v", err)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	s := start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitFor(ctx, mailcatcher.To("nobody@example.com")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor = %v, want deadline exceeded", err)
	}
}
