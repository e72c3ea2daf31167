package smtpmail

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// The message writer below produces what go-mail's builder produced for
// the same mail (the headers of build, text part first then HTML, both
// quoted-printable UTF-8), straight into one buffer: no per-message MIME
// objects, no byte-at-a-time dot-stuffing writer, one write to the socket.
// It handles the ASCII addresses of almost all mail; anything else goes
// through go-mail (see canWrite).

// canWrite reports whether writeMessage can write m: ASCII addresses and a
// List-Unsubscribe URL of printable ASCII without angle brackets (Enqueue
// validated it; this keeps a header from ever being broken by it).
func canWrite(from *netmail.Address, m *delivery.Mail) bool {
	return printableASCII(from.Address) && printableASCII(m.To) && printableASCII(m.ListUnsubscribeURL) &&
		!strings.ContainsAny(m.ListUnsubscribeURL, "<> ") && !strings.ContainsAny(m.To, "<> ")
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// body is one body part: a plain string, or a content's body encoded once
// with the message's values to splice in.
type body struct {
	plain   string
	encoded *encodedBody
	vars    map[string]string
}

func (p body) empty() bool {
	if p.encoded != nil {
		return p.encoded.empty()
	}
	return p.plain == ""
}

// write writes the body in quoted-printable.
func (p body) write(b *bytes.Buffer) {
	if p.encoded != nil {
		p.encoded.write(b, p.vars)
		return
	}
	qpEncode(b, p.plain)
}

// writeMessage writes m as an RFC 5322 message with CRLF line ends, ready
// for DATA: no line starts with a dot, so it needs no dot-stuffing.
func (mr *Mailer) writeMessage(b *bytes.Buffer, m *delivery.Mail, now time.Time) {
	from := mr.cfg.From
	var subject string
	var text, html body
	if m.Content != nil {
		enc := mr.encoded.get(m.Content)
		subject = m.Content.Subject(m.Variables)
		text = body{encoded: &enc.text, vars: m.Variables}
		html = body{encoded: &enc.html, vars: m.Variables}
	} else {
		subject, text, html = m.Subject, body{plain: m.Text}, body{plain: m.HTML}
	}
	header(b, "Date", now.Format(time.RFC1123Z))
	header(b, "From", from.String()) // encodes a non-ASCII display name
	b.WriteString("To: <")
	b.WriteString(m.To)
	b.WriteString(">\r\n")
	writeSubject(b, subject)
	b.WriteString("Message-ID: <")
	b.WriteString(m.MessageID)
	b.WriteByte('@')
	b.WriteString(mr.cfg.MessageIDDomain)
	b.WriteString(">\r\n")
	if m.ListUnsubscribeURL != "" {
		b.WriteString("List-Unsubscribe: <")
		b.WriteString(m.ListUnsubscribeURL)
		b.WriteString(">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
	}
	if m.Lane == queue.LaneBulk {
		b.WriteString("Precedence: bulk\r\nX-Auto-Response-Suppress: All\r\n")
		if mr.cfg.ListID != "" {
			header(b, "List-Id", mr.cfg.ListID)
		}
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	switch {
	case !text.empty() && !html.empty():
		boundary := newBoundary()
		b.WriteString("Content-Type: multipart/alternative;\r\n boundary=\"")
		b.WriteString(boundary)
		b.WriteString("\"\r\n\r\n")
		for _, part := range []struct {
			typ  string
			body body
		}{{"text/plain", text}, {"text/html", html}} {
			b.WriteString("--")
			b.WriteString(boundary)
			b.WriteString("\r\n")
			writePart(b, part.typ, part.body)
			b.WriteString("\r\n") // belongs to the delimiter that follows
		}
		b.WriteString("--")
		b.WriteString(boundary)
		b.WriteString("--\r\n")
	case !text.empty():
		writePart(b, "text/plain", text)
		endLine(b)
	default:
		writePart(b, "text/html", html)
		endLine(b)
	}
}

func header(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(value)
	b.WriteString("\r\n")
}

// endLine ends the message with CRLF, as DATA requires: a body that does
// not end with a line break gets a soft line break, which decodes to
// nothing.
func endLine(b *bytes.Buffer) {
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("=\r\n")
	}
}

// writePart writes a part's headers, a blank line and the body in
// quoted-printable (ending with CRLF only if the body ends with a line
// break).
func writePart(b *bytes.Buffer, contentType string, p body) {
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\nContent-Type: ")
	b.WriteString(contentType)
	b.WriteString("; charset=UTF-8\r\n\r\n")
	p.write(b)
}

// writeSubject writes the Subject header: as is when it is printable ASCII
// (at most 900 bytes after rendering, so one line), otherwise as RFC 2047
// encoded words, one per folded line, which cannot carry a line break
// whatever the text holds.
func writeSubject(b *bytes.Buffer, s string) {
	if printableASCII(s) && len(s) <= 900 && !strings.Contains(s, "=?") && strings.TrimSpace(s) == s {
		header(b, "Subject", s)
		return
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	// RFC 2047 "B" encoded words of at most 75 characters (45 bytes of
	// text each, cut at rune boundaries), one per folded line.
	b.WriteString("Subject:")
	for s != "" {
		n := min(len(s), 45)
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		b.WriteString(" =?UTF-8?B?")
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(s[:n])))
		b.WriteString("?=")
		if s = s[n:]; s != "" {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
}

// newBoundary returns a MIME boundary that can never occur in a
// quoted-printable body: "=_" is not valid quoted-printable ("=" is always
// followed by two hex digits or a line break).
func newBoundary() string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	return "=_paperroute_" + hex.EncodeToString(r[:])
}

// qpMaxLine is the longest encoded line, without its CRLF (RFC 2045).
const qpMaxLine = 76

const hexUpper = "0123456789ABCDEF"

// qpEncode writes s in quoted-printable (RFC 2045 §6.7) with CRLF line
// ends: line breaks ("\n" or "\r\n") stay line breaks; "=", bytes outside
// printable ASCII, a space or tab before a line end, and a dot at the start
// of a line (so the message never needs SMTP dot-stuffing) are encoded;
// lines are cut with soft breaks at 76 characters.
func qpEncode(b *bytes.Buffer, s string) {
	col := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			if c == '\r' {
				i++
			}
			b.WriteString("\r\n")
			col = 0
			continue
		}
		encode := c == '=' || c < ' ' && c != '\t' || c > '~' ||
			c == '.' && col == 0 ||
			(c == ' ' || c == '\t') && (i+1 == len(s) || s[i+1] == '\n' || s[i+1] == '\r')
		n := 1
		if encode {
			n = 3
		}
		// Leave room for the "=" of a soft break.
		if col+n > qpMaxLine-1 {
			b.WriteString("=\r\n")
			col = 0
			if c == '.' && !encode {
				n, encode = 3, true
			}
		}
		if encode {
			b.WriteByte('=')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&0x0f])
		} else {
			b.WriteByte(c)
		}
		col += n
	}
}
