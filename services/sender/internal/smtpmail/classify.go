package smtpmail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// classify turns a failed go-mail send into delivery's classes, using
// errors.As(*mail.SendError): 5xx permanent (a refused sender excepted: that
// is our configuration), 421/451/454 throttling, no reply to the final dot
// an unknown outcome, anything else (other 4xx, a broken connection before
// the final dot) temporary. broken is called when the session cannot be
// reused.
func classify(err error, broken func()) error {
	var se *mail.SendError
	if !errors.As(err, &se) {
		broken()
		return fmt.Errorf("smtpmail: %w", err)
	}
	code := se.ErrorCode()
	switch {
	case code >= 500 && code <= 599 && se.Reason == mail.ErrSMTPMailFrom:
		// A refused sender is about our configuration, not this message:
		// retry (it dead-letters after the attempt limit).
		return fmt.Errorf("smtpmail: relay refused the sender: %w", err)
	case code >= 500 && code <= 599:
		return fmt.Errorf("smtpmail: %w: %w", delivery.ErrRejected, err)
	}
	// 4xx, or no reply at all: the session state is unknown, so the
	// connection is not reused.
	broken()
	switch {
	case code == 421 || code == 451 || code == 454:
		return fmt.Errorf("smtpmail: %w: %w", delivery.ErrThrottled, err)
	case code == 0 && se.Reason == mail.ErrSMTPDataClose:
		// The final dot was (perhaps) written and no reply came: the relay
		// may have stored the message.
		return fmt.Errorf("smtpmail: %w: %w", delivery.ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("smtpmail: %w", err)
}

// fencedConn bounds every read and write by a fence time (the end of the
// delivery lease): the deadlines go-mail sets are clamped to it, so a
// process that stalled past its lease (SIGSTOP, a long GC pause) fails its
// next write instead of finishing a send that another worker took over.
type fencedConn struct {
	net.Conn
	mu    sync.Mutex
	fence time.Time
}

func (f *fencedConn) clamp(t time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.fence.IsZero() && (t.IsZero() || t.After(f.fence)) {
		return f.fence
	}
	return t
}

// Write implements net.Conn. Past the fence nothing more is written, even
// if the runtime has not yet noticed the expired deadline: a process
// resumed after a stop (SIGSTOP, a long pause) can run a goroutine before
// its deadline timers fire, and must not hand the relay the rest of a
// message another worker has taken over.
func (f *fencedConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	fence := f.fence
	f.mu.Unlock()
	if !fence.IsZero() && !time.Now().Before(fence) {
		return 0, fmt.Errorf("smtpmail: write after the lease ended: %w", os.ErrDeadlineExceeded)
	}
	return f.Conn.Write(p)
}

// SetDeadline implements net.Conn.
func (f *fencedConn) SetDeadline(t time.Time) error { return f.Conn.SetDeadline(f.clamp(t)) }

// SetReadDeadline implements net.Conn.
func (f *fencedConn) SetReadDeadline(t time.Time) error { return f.Conn.SetReadDeadline(f.clamp(t)) }

// SetWriteDeadline implements net.Conn.
func (f *fencedConn) SetWriteDeadline(t time.Time) error { return f.Conn.SetWriteDeadline(f.clamp(t)) }

// setFence moves the fence to ctx's deadline (none: no fence) and applies
// it at once.
func (f *fencedConn) setFence(ctx context.Context) {
	t, _ := ctx.Deadline()
	f.mu.Lock()
	f.fence = t
	f.mu.Unlock()
	_ = f.Conn.SetDeadline(t)
}

// setFence bounds the coming send by ctx's deadline.
func (c *conn) setFence(ctx context.Context) {
	c.mu.Lock()
	fence := c.fence
	c.mu.Unlock()
	if fence != nil {
		fence.setFence(ctx)
	}
}

// ReplyCode is the SMTP reply code a failed send carries (the relay's 4xx
// or 5xx refusal of the transaction), or 0 when no reply came (a broken
// connection, a timeout). Errors of Conn.Send keep the go-mail error or the
// direct path's reply wrapped, so it works on them as returned.
func ReplyCode(err error) int {
	var re *replyError
	if errors.As(err, &re) {
		return re.code
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return 0
}
