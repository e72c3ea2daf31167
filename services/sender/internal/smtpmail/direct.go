package smtpmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
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

// sendDirect writes the message with writeMessage and runs the SMTP
// transaction on the session's text connection.
func (c *conn) sendDirect(ctx context.Context, m *delivery.Mail) error {
	b := bufs.Get().(*bytes.Buffer)
	b.Reset()
	defer func() {
		if b.Cap() <= maxPooledBuf {
			bufs.Put(b)
		}
	}()
	c.mailer.writeMessage(b, m, time.Now())
	stop := context.AfterFunc(ctx, c.cut)
	delivered, err := c.transact(b.Bytes(), m.To)
	if !stop() {
		c.setBroken()
		if !delivered {
			return fmt.Errorf("smtpmail: send cut off: %w", ctx.Err())
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
	var re *replyError
	if errors.As(err, &re) && re.code >= 500 && re.code <= 599 {
		if re.stage == stageMail {
			// A refused sender is about our configuration, not this
			// message: retry (it dead-letters after the attempt limit).
			return fmt.Errorf("smtpmail: relay refused the sender: %w", err)
		}
		return fmt.Errorf("smtpmail: %w: %w", delivery.ErrRejected, err)
	}
	// 4xx, or no reply at all (broken connection, timeout): the session
	// state is unknown, so the connection is not reused.
	c.setBroken()
	return fmt.Errorf("smtpmail: %w", err)
}

// transact sends one message: MAIL, RCPT and DATA (in one write when the
// relay announced PIPELINING, RFC 2920), then the message and the final
// dot in one write. It reports whether the relay accepted the message; a
// refusal is a *replyError, anything else a broken connection. After a
// refusal before the data the transaction is reset, so the connection stays
// usable.
func (c *conn) transact(msg []byte, to string) (bool, error) {
	if err := c.session.UpdateDeadline(c.mailer.cfg.Timeout); err != nil {
		return false, err
	}
	t := c.session.Text
	cmds := []struct {
		stage stage
		line  string
		want  int
	}{
		{stageMail, "MAIL FROM:<" + c.mailer.cfg.From.Address + ">", 250},
		{stageRcpt, "RCPT TO:<" + to + ">", 25},
		{stageData, "DATA", 354},
	}
	var refused error
	dataOpen := false
	if c.pipelining {
		for _, cmd := range cmds {
			if err := t.PrintfLine("%s", cmd.line); err != nil {
				return false, err
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
				return false, err
			}
		}
	} else {
		for _, cmd := range cmds {
			if err := t.PrintfLine("%s", cmd.line); err != nil {
				return false, err
			}
			if err := reply(t, cmd.stage, cmd.want); err != nil {
				var re *replyError
				if !errors.As(err, &re) {
					return false, err
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
				return false, err
			}
			if err := t.W.Flush(); err != nil {
				return false, err
			}
			if err := reply(t, stageDot, 250); err == nil {
				return false, errors.Join(refused, errors.New("the relay accepted an empty message"))
			}
		}
		if err := c.session.Reset(); err != nil {
			return false, errors.Join(refused, err)
		}
		return false, refused
	}
	if bytes.Contains(msg, []byte("\n.")) {
		msg = dotStuff(msg) // writeMessage never does this; stay safe anyway
	}
	if _, err := t.W.Write(msg); err != nil {
		return false, err
	}
	if _, err := t.W.WriteString(".\r\n"); err != nil {
		return false, err
	}
	if err := t.W.Flush(); err != nil {
		return false, err
	}
	if err := reply(t, stageDot, 250); err != nil {
		return false, err
	}
	return true, nil
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
