package smtpmail_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// hostileContent is text that stresses the message writer: quoted-printable
// specials, dots at line starts (SMTP's end of data), long lines without
// spaces, trailing white space, CRLF and LF line ends, something that looks
// like our MIME boundary, and non-ASCII.
var hostileContent = []struct{ name, subject, text, html string }{
	{"specials", "a=b =?UTF-8?B?Zm9v?= c", "x=y\n.\n..\n. leading dot\nend", "<p>a=3D&amp;b</p>\r\n.\r\n"},
	{"long lines", strings.Repeat("Ünïcödé ", 100), strings.Repeat("y", 5000), strings.Repeat("<b>é</b>", 900)},
	{"trailing space", "trailing ", "space at end \ntab at end\t\nlast line ends in space ", "<p> </p> \r\n\t"},
	{"boundary lookalike", "--=_paperroute_0", "--=_paperroute_000000000000000000000000\n--=_paperroute_000000000000000000000000--\n", "<pre>\n--boundary\n</pre>"},
	{"dots at soft breaks", "ok", strings.Repeat("a", 74) + "." + strings.Repeat("b", 74) + ".." + strings.Repeat(".", 200), strings.Repeat(".", 300)},
	{"emoji and CJK", "論文 📄 digest", "今日の論文 📄\n", "<p>今日の論文 📄</p>"},
	{"max subject", strings.Repeat("€", 300), "t", ""},
	{"html only", "html only", "", "<p>only html</p>"},
}

// TestDirectWriterRoundTrips sends hostile content through the relay and
// parses what it received as a mail client would: every part decodes to
// exactly what was rendered, and no line is longer than RFC 5322 allows.
func TestDirectWriterRoundTrips(t *testing.T) {
	mc := catcher(t)
	c := dial(t, mailer(t, mc.Addr(), nil))
	for i, tc := range hostileContent {
		t.Run(tc.name, func(t *testing.T) {
			to := "r" + string(rune('a'+i)) + "@example.com"
			m := &delivery.Mail{
				MessageID: queue.MessageID(to), To: to, Lane: queue.LaneBulk,
				Rendered:           mailtemplate.Rendered{Subject: tc.subject, Text: tc.text, HTML: tc.html},
				ListUnsubscribeURL: "https://paperroute.example/u?t=" + to,
			}
			if err := c.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			got, err := mc.WaitFor(context.Background(), mailcatcher.To(to))
			if err != nil {
				t.Fatal(err)
			}
			p, err := mailcatcher.Parse(got.Data)
			if err != nil {
				t.Fatal(err)
			}
			crlf := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n") }
			if p.Subject != tc.subject {
				t.Errorf("subject = %q, want %q", p.Subject, tc.subject)
			}
			if crlf(p.Text) != crlf(tc.text) {
				t.Errorf("text part = %q, want %q", p.Text, tc.text)
			}
			if crlf(p.HTML) != crlf(tc.html) {
				t.Errorf("html part = %q, want %q", p.HTML, tc.html)
			}
			for _, line := range strings.Split(string(got.Data), "\r\n") {
				if len(line) > 998 {
					t.Errorf("a line of %d characters", len(line))
				}
			}
			if p.Header.Get("List-Unsubscribe") != "<"+m.ListUnsubscribeURL+">" {
				t.Errorf("List-Unsubscribe = %q", p.Header.Get("List-Unsubscribe"))
			}
		})
	}
}

// TestNonASCIIRecipientGoesThroughGoMail: an internationalised local part
// is left to go-mail's builder, and still arrives.
func TestNonASCIIRecipientGoesThroughGoMail(t *testing.T) {
	mc := catcher(t)
	c := dial(t, mailer(t, mc.Addr(), nil))
	to := "jürgen@example.com"
	if err := c.Send(context.Background(), mail(to)); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.WaitFor(context.Background(), mailcatcher.To(to)); err != nil {
		t.Fatal(err)
	}
}

// hostileValues are per-recipient values spliced into encoded content.
var hostileValues = []string{
	"", "plain", `<script>alert("x")</script> & 'q'`, "=3D=", ". dot first", "trailing ",
	strings.Repeat("Ω", 700), strings.Repeat("v", 2000), "{{name}}", "€ ▲ 📄",
}

// TestSplicedContentRoundTrips sends content templates with hostile
// literals and values through the splicing path (Mail.Content) to a real
// SMTP server, and checks that what a mail client decodes is exactly what
// mailtemplate renders: values spliced into the text as they are and into
// the HTML escaped.
func TestSplicedContentRoundTrips(t *testing.T) {
	mc := catcher(t)
	c := dial(t, mailer(t, mc.Addr(), nil))
	n := 0
	for _, tc := range hostileContent {
		content := mailtemplate.Compile(tc.subject+" {{v}}", addVars(tc.html), addVars(tc.text))
		for _, v := range hostileValues {
			n++
			to := "s" + strconv.Itoa(n) + "@example.com"
			vars := map[string]string{"v": v, "w": v + "!"}
			m := &delivery.Mail{MessageID: queue.MessageID(to), To: to, Lane: queue.LaneBulk, Content: content, Variables: vars}
			if err := c.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			got, err := mc.WaitFor(context.Background(), mailcatcher.To(to))
			if err != nil {
				t.Fatal(err)
			}
			p, err := mailcatcher.Parse(got.Data)
			if err != nil {
				t.Fatal(err)
			}
			want := content.Render(vars)
			crlf := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n") }
			if p.Subject != want.Subject || crlf(p.Text) != crlf(want.Text) || crlf(p.HTML) != crlf(want.HTML) {
				t.Errorf("%s with value %.40q: decoded\n subject %.200q\n text %.200q\n html %.200q\nwant\n subject %.200q\n text %.200q\n html %.200q",
					tc.name, v, p.Subject, p.Text, p.HTML, want.Subject, want.Text, want.HTML)
			}
			for _, line := range strings.Split(string(got.Data), "\r\n") {
				if len(line) > 998 {
					t.Errorf("%s: a line of %d characters", tc.name, len(line))
				}
			}
		}
	}
}

// addVars puts variables at the start, in the middle, twice in a row and
// at the end of s.
func addVars(s string) string {
	if s == "" {
		return ""
	}
	return "{{v}}" + s[:len(s)/2] + "{{v}}{{w}}" + s[len(s)/2:] + "{{w}}"
}

// TestDirectClassifiesFailures: what the delivery protocol needs to tell
// apart on the direct path: throttling, an unknown outcome after the final
// dot, and the relay's reply to a delivered message.
func TestDirectClassifiesFailures(t *testing.T) {
	tests := []struct {
		name  string
		stage mailcatcher.Stage
		err   error
		want  error
	}{
		{"421 at RCPT is throttling", mailcatcher.StageRcpt, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "slow down"}, delivery.ErrThrottled},
		{"451 after the data is throttling", mailcatcher.StageData, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}, delivery.ErrThrottled},
		{"no reply after the final dot is an unknown outcome", mailcatcher.StageData, mailcatcher.ErrDisconnect, delivery.ErrOutcomeUnknown},
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
			if !errors.Is(err, tt.want) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
			if c.Reusable() {
				t.Error("the connection is reusable after the failure")
			}
		})
	}
	t.Run("a disconnect before the data is not an unknown outcome", func(t *testing.T) {
		mc := catcher(t)
		mc.SetFault(func(stage mailcatcher.Stage, _ string) error {
			if stage == mailcatcher.StageRcpt {
				return mailcatcher.ErrDisconnect
			}
			return nil
		})
		c := dial(t, mailer(t, mc.Addr(), nil))
		err := c.Send(context.Background(), mail("r@example.com"))
		if err == nil || errors.Is(err, delivery.ErrOutcomeUnknown) || errors.Is(err, delivery.ErrRejected) {
			t.Errorf("Send = %v, want a plain temporary error", err)
		}
	})
	t.Run("the reply to a delivered message", func(t *testing.T) {
		mc := catcher(t)
		c := dial(t, mailer(t, mc.Addr(), nil))
		if err := c.Send(context.Background(), mail("r@example.com")); err != nil {
			t.Fatal(err)
		}
		r, ok := c.(delivery.Replier)
		if !ok || !strings.HasPrefix(r.LastReply(), "250 ") {
			t.Errorf("LastReply = %q (a Replier: %v), want the relay's 250", r.LastReply(), ok)
		}
	})
}
