package smtpmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// bufs recycles message buffers: a digest is a few KB, written once.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps an unusually large message's buffer out of the pool.
const maxPooledBuf = 1 << 20

// stage is the SMTP command a reply answered.
type stage string

const (
	stageMail stage = "MAIL"
	stageRcpt stage = "RCPT"
	stageData stage = "DATA"
	stageDot  stage = "end of data"
)

// replyError is a relay's refusal at one stage of a transaction.
type replyError struct {
	stage stage
	code  int
	msg   string
}

func (e *replyError) Error() string {
	return fmt.Sprintf("%s: relay answered %d %s", e.stage, e.code, e.msg)
}

// envelope is one message's MAIL FROM and RCPT TO addresses.
type envelope struct{ from, to string }

// nextEnvelope, when a send may pipeline the next message's envelope
// behind its own message (RFC 2920), is asked for that envelope right
// before the message is written; nil means there is none.
type nextEnvelope func() *envelope

// envelopeOf is the envelope of a message that is yet to come, if it can
// be written ahead on this connection: the relay announced PIPELINING and
// the message will take the direct path (ASCII addresses).
func (c *conn) envelopeOf(env delivery.Envelope) (*envelope, bool) {
	from := c.mailer.envelopeFrom(env.MessageID)
	if !c.pipelining || !canWrite(c.mailer.cfg.From, &delivery.Mail{To: env.To}) ||
		!printableASCII(from) || strings.ContainsAny(from, "<> ") {
		return nil, false
	}
	return &envelope{from: from, to: env.To}, true
}

// expects reports whether m may be sent on the connection: always, unless
// another message's envelope was written ahead (c.ahead), which only m's
// own direct send can continue.
func (c *conn) expects(m *delivery.Mail) bool {
	if c.ahead == nil {
		return true
	}
	return canWrite(c.mailer.cfg.From, m) && *c.ahead == envelope{from: c.mailer.envelopeFrom(m.MessageID), to: m.To}
}

// sendDirect writes the message with writeMessage and runs the SMTP
// transaction on the session's text connection; next, if not nil, may
// give an envelope to write behind the message (see transact).
func (c *conn) sendDirect(ctx context.Context, m *delivery.Mail, next nextEnvelope) error {
	b := bufs.Get().(*bytes.Buffer)
	b.Reset()
	defer func() {
		if b.Cap() <= maxPooledBuf {
			bufs.Put(b)
		}
	}()
	c.mailer.writeMessage(b, m, time.Now())
	payload := b.Bytes()
	if d := c.mailer.cfg.DKIM; d != nil {
		var signed bytes.Buffer
		signed.Grow(b.Len() + 1024)
		if err := d.sign(&signed, payload); err != nil {
			c.dropAhead()
			return fmt.Errorf("%w: %w", delivery.ErrRejected, err) // the same every time
		}
		payload = signed.Bytes()
	}
	c.setFence(ctx)
	stop := context.AfterFunc(ctx, c.cut)
	delivered, afterData, err := c.transact(payload, c.mailer.envelopeFrom(m.MessageID), m.To, next)
	if !delivered && c.ahead != nil {
		// The next envelope went out behind a message that was not
		// accepted: its sender dials anew rather than read replies that
		// follow a failure.
		c.dropAhead()
	}
	if !stop() {
		c.setBroken()
		if !delivered {
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("smtpmail: send cut off (%w): %w", ctx.Err(), c.classifyDirect(err, afterData))
		}
	}
	if delivered {
		// The relay answered 250 to the final dot: delivered, even if
		// something after it failed (that only spoils the connection).
		if err != nil {
			c.setBroken()
		}
		return nil
	}
	return c.classifyDirect(err, afterData)
}

// classifyDirect is classify for transact's errors: 5xx rejects the
// message (but at MAIL it is about our sender: retried), 421/451/454 is
// throttling, and no reply once the message and its final dot may have
// been written is an unknown outcome. Anything but a refusal before the
// data spoils the connection.
func (c *conn) classifyDirect(err error, afterData bool) error {
	var re *replyError
	if errors.As(err, &re) {
		switch {
		case re.code >= 500 && re.code <= 599 && re.stage == stageMail:
			return fmt.Errorf("smtpmail: relay refused the sender: %w", err)
		case re.code >= 500 && re.code <= 599:
			return fmt.Errorf("smtpmail: %w: %w", delivery.ErrRejected, err)
		}
		c.setBroken()
		if re.code == 421 || re.code == 451 || re.code == 454 {
			return fmt.Errorf("smtpmail: %w: %w", delivery.ErrThrottled, err)
		}
		return fmt.Errorf("smtpmail: %w", err)
	}
	c.setBroken()
	if afterData {
		// The final dot was (perhaps) written and no reply came: the relay
		// may have stored the message.
		return fmt.Errorf("smtpmail: %w: %w", delivery.ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("smtpmail: %w", err)
}

// transact sends one message: MAIL, RCPT and DATA (in one write when the
// relay announced PIPELINING, RFC 2920), then the message and the final
// dot in one write. It reports whether the relay accepted the message; a
// refusal is a *replyError, anything else a broken connection; afterData
// reports that the message and its final dot may have reached the relay.
// After a refusal before the data the transaction is reset, so the
// connection stays usable.
//
// When the envelope was already written behind the previous message
// (c.ahead), only its replies are read. When next gives an envelope, its
// MAIL, RCPT and DATA go in the same write as the message and the final
// dot (RFC 2920 allows the message content as the first command of a
// group), and it becomes c.ahead: one write and one read per message.
func (c *conn) transact(msg []byte, from, to string, next nextEnvelope) (delivered, afterData bool, err error) {
	ahead := c.ahead
	c.ahead = nil
	if err := c.session.UpdateDeadline(c.mailer.cfg.Timeout); err != nil {
		return false, false, err
	}
	t := c.session.Text
	cmds := envelopeCommands(from, to)
	var refused error
	dataOpen := false
	if ahead != nil || c.pipelining {
		if ahead == nil {
			// One write for the three commands (PrintfLine would flush each).
			for _, cmd := range cmds {
				_, _ = t.W.WriteString(cmd.line)
				_, _ = t.W.WriteString("\r\n")
			}
			if err := t.W.Flush(); err != nil {
				return false, false, err
			}
		}
		for _, cmd := range cmds {
			err := reply(t, cmd.stage, cmd.want)
			var re *replyError
			switch {
			case err == nil && cmd.stage == stageData:
				dataOpen = true
			case errors.As(err, &re):
				if refused == nil {
					refused = err
				}
			case err != nil:
				return false, false, err
			}
		}
	} else {
		for _, cmd := range cmds {
			if err := t.PrintfLine("%s", cmd.line); err != nil {
				return false, false, err
			}
			if err := reply(t, cmd.stage, cmd.want); err != nil {
				var re *replyError
				if !errors.As(err, &re) {
					return false, false, err
				}
				refused = err
				break
			}
			dataOpen = cmd.stage == stageData
		}
	}
	if refused != nil {
		if dataOpen {
			// A relay that opened DATA although MAIL or RCPT failed:
			// close it empty. It has no valid recipient to deliver to.
			if _, err := t.W.WriteString(".\r\n"); err != nil {
				return false, false, err
			}
			if err := t.W.Flush(); err != nil {
				return false, false, err
			}
			if err := reply(t, stageDot, 250); err == nil {
				return false, false, errors.Join(refused, errors.New("the relay accepted an empty message"))
			}
		}
		if err := c.session.Reset(); err != nil {
			return false, false, errors.Join(refused, err)
		}
		return false, false, refused
	}
	if bytes.Contains(msg, []byte("\n.")) {
		msg = dotStuff(msg) // writeMessage never does this; stay safe anyway
	}
	// The message and the final dot in one write, with the next envelope
	// if there is one.
	msg = append(msg, ".\r\n"...)
	var nx *envelope
	if next != nil && c.pipelining {
		nx = next()
	}
	if nx != nil {
		for _, cmd := range envelopeCommands(nx.from, nx.to) {
			msg = append(append(msg, cmd.line...), "\r\n"...)
		}
	}
	if _, err := t.W.Write(msg); err != nil {
		return false, true, err
	}
	if err := t.W.Flush(); err != nil {
		return false, true, err
	}
	c.ahead = nx
	code, text, err := t.ReadResponse(250)
	if err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			return false, false, &replyError{stage: stageDot, code: te.Code, msg: te.Msg}
		}
		return false, true, err
	}
	c.setLastReply(code, text)
	return true, false, nil
}

// command is one envelope command and the reply it wants.
type command struct {
	stage stage
	line  string
	want  int
}

// envelopeCommands are MAIL, RCPT and DATA for one message.
func envelopeCommands(from, to string) [3]command {
	return [3]command{
		{stageMail, "MAIL FROM:<" + from + ">", 250},
		{stageRcpt, "RCPT TO:<" + to + ">", 25},
		{stageData, "DATA", 354},
	}
}

// dropAhead gives up an envelope written ahead whose replies will not be
// read: its DATA may be open, which only closing the connection ends
// without delivering anything, so the connection is not reused.
func (c *conn) dropAhead() {
	if c.ahead != nil {
		c.ahead = nil
		c.setBroken()
	}
}

// reply reads one reply; a reply of the wrong class is a *replyError.
func reply(t *textproto.Conn, st stage, want int) error {
	_, _, err := t.ReadResponse(want)
	var te *textproto.Error
	if errors.As(err, &te) {
		return &replyError{stage: st, code: te.Code, msg: te.Msg}
	}
	return err
}

// dotStuff doubles the dot at the start of every line (RFC 5321 §4.5.2).
func dotStuff(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+64)
	start := true
	for _, c := range msg {
		if start && c == '.' {
			out = append(out, '.')
		}
		out = append(out, c)
		start = c == '\n'
	}
	return out
}

// setLastReply keeps the relay's reply to the final dot (e.g. "250 2.0.0
// Ok: queued as 4F1X2"), the relay's own id of the message.
func (c *conn) setLastReply(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastReply = fmt.Sprintf("%d %s", code, text)
}

// LastReply implements delivery.Replier: the reply to the last message's
// final dot when it went through the direct path, else "".
func (c *conn) LastReply() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastReply
}

var _ delivery.Replier = (*conn)(nil)
