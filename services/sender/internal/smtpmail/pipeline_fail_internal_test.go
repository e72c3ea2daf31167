package smtpmail

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// pipeRig is a pool of one connection to a catcher behind a counting
// proxy, with a fault hook per test and a count of the MAIL commands the
// relay read for each envelope sender.
type pipeRig struct {
	mc    *mailcatcher.Server
	proxy *countingProxy
	p     *Pool

	mu    sync.Mutex
	mails map[string]int
	fault mailcatcher.Fault
}

func newPipeRig(t *testing.T) *pipeRig {
	t.Helper()
	mc, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Close() })
	r := &pipeRig{mc: mc, proxy: startProxy(t, mc.Addr()), mails: map[string]int{}}
	mc.SetFault(func(stage mailcatcher.Stage, arg string) error {
		r.mu.Lock()
		if stage == mailcatcher.StageMail {
			r.mails[arg]++
		}
		f := r.fault
		r.mu.Unlock()
		if f != nil {
			return f(stage, arg)
		}
		return nil
	})
	r.p, err = NewPool(pipeMailer(t, r.proxy.Addr(), nil), 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.p.Close)
	return r
}

func (r *pipeRig) setFault(f mailcatcher.Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = f
}

// mailsFor is how many MAIL commands the relay read for m's envelope.
func (r *pipeRig) mailsFor(m *delivery.Mail) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mails["digest+"+m.MessageID+"@paperroute.example"]
}

// waitMails waits until the relay has read n MAIL commands for m.
func (r *pipeRig) waitMails(t *testing.T, m *delivery.Mail, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.mailsFor(m) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the relay read %d MAIL commands for %s, want %d", r.mailsFor(m), m.To, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// dialed is the outcome of a DialFor.
type dialed struct {
	c   delivery.Conn
	err error
}

// waitFor starts a worker asking for a connection for m, and waits until
// it waits in the pool's queue.
func (r *pipeRig) waitFor(t *testing.T, ctx context.Context, m *delivery.Mail) <-chan dialed {
	t.Helper()
	ch := make(chan dialed, 1)
	go func() {
		c, err := r.p.DialFor(ctx, delivery.Envelope{MessageID: m.MessageID, To: m.To})
		ch <- dialed{c, err}
	}()
	waitWaiting(t, r.p, 1)
	return ch
}

// first takes the pool's connection for m.
func (r *pipeRig) first(t *testing.T, m *delivery.Mail) delivery.Conn {
	t.Helper()
	c, err := r.p.DialFor(context.Background(), delivery.Envelope{MessageID: m.MessageID, To: m.To})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handedOver sends a on the pool's connection while a worker waits for
// one for b, and returns the connection the waiter got.
func (r *pipeRig) handedOver(t *testing.T, a, b *delivery.Mail) dialed {
	t.Helper()
	ca := r.first(t, a)
	waiting := r.waitFor(t, context.Background(), b)
	if err := ca.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	_ = ca.Close()
	d := recv(t, waiting)
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d
}

func recv(t *testing.T, ch <-chan dialed) dialed {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting worker got no connection")
		return dialed{}
	}
}

// TestPipelinedFailuresOfTheMessageAhead: when the message whose write
// carried the waiter's envelope is refused at the dot or loses its
// connection, the waiter is not charged: it gets a new connection and
// sends its envelope again, and its message is delivered once.
func TestPipelinedFailuresOfTheMessageAhead(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault error
		want  error
	}{
		{"dot refused", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}, delivery.ErrRejected},
		{"dot throttled", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}, delivery.ErrThrottled},
		{"connection dropped after the dot", mailcatcher.ErrDisconnect, delivery.ErrOutcomeUnknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newPipeRig(t)
			a, b := bodyMail("a@example.com"), bodyMail("b@example.com")
			r.setFault(func(stage mailcatcher.Stage, arg string) error {
				if stage == mailcatcher.StageData && arg == a.To {
					return tt.fault
				}
				return nil
			})
			ca := r.first(t, a)
			waiting := r.waitFor(t, context.Background(), b)
			if err := ca.Send(context.Background(), a); !errors.Is(err, tt.want) {
				t.Errorf("the message ahead: Send = %v, want %v", err, tt.want)
			}
			_ = ca.Close()
			d := recv(t, waiting)
			if d.err != nil {
				t.Fatal(d.err)
			}
			if err := d.c.Send(context.Background(), b); err != nil {
				t.Errorf("the waiter's message: Send = %v", err)
			}
			_ = d.c.Close()
			checkCaught(t, r.mc, []string{b.To})
			if n := r.proxy.conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2 (the waiter redials)", n)
			}
			if _, ok := tt.fault.(*smtp.SMTPError); ok {
				// After a refusal the relay reads on: the pipelined MAIL
				// shows the envelope was written ahead, then again.
				r.waitMails(t, b, 2)
			}
		})
	}
}

// TestPipelinedEnvelopeRefused: a 5xx to the waiter's pipelined RCPT
// rejects the waiter's message (as without pipelining), and the
// connection goes on to the next message.
func TestPipelinedEnvelopeRefused(t *testing.T) {
	r := newPipeRig(t)
	a, b, c := bodyMail("a@example.com"), bodyMail("bad@example.com"), bodyMail("c@example.com")
	r.setFault(func(stage mailcatcher.Stage, arg string) error {
		if stage == mailcatcher.StageRcpt && arg == b.To {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	d := r.handedOver(t, a, b)
	if err := d.c.Send(context.Background(), b); !errors.Is(err, delivery.ErrRejected) {
		t.Errorf("Send = %v, want ErrRejected", err)
	}
	_ = d.c.Close()
	if err := sendVia(context.Background(), r.p, c); err != nil {
		t.Fatal(err)
	}
	checkCaught(t, r.mc, []string{a.To, c.To})
	if n := r.proxy.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (a refused recipient keeps the session)", n)
	}
	if n := r.mailsFor(b); n != 1 {
		t.Errorf("the relay read %d MAIL commands for the refused message, want 1", n)
	}
}

// TestPipelinedWaiterDoesNotSend: a waiter whose envelope was written
// ahead but which does not send (its lease refused, shutdown) leaves
// nothing delivered: the connection, its DATA open, is closed, and the
// next message goes on a new one. The same when the waiter's context ends
// while the message ahead is still waiting for its reply.
func TestPipelinedWaiterDoesNotSend(t *testing.T) {
	t.Run("closes without sending", func(t *testing.T) {
		r := newPipeRig(t)
		a, b, c := bodyMail("a@example.com"), bodyMail("b@example.com"), bodyMail("c@example.com")
		d := r.handedOver(t, a, b)
		if cn, ok := d.c.(*lease).pc.c.(*conn); !ok || cn.ahead == nil {
			t.Fatal("the waiter's envelope was not written ahead")
		}
		_ = d.c.Close()
		if err := sendVia(context.Background(), r.p, c); err != nil {
			t.Fatal(err)
		}
		checkCaught(t, r.mc, []string{a.To, c.To})
		if n := r.proxy.conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
	t.Run("context ends while claimed", func(t *testing.T) {
		r := newPipeRig(t)
		a, b, c := bodyMail("a@example.com"), bodyMail("b@example.com"), bodyMail("c@example.com")
		atDot, release := make(chan struct{}), make(chan struct{})
		r.setFault(func(stage mailcatcher.Stage, arg string) error {
			if stage == mailcatcher.StageData && arg == a.To {
				close(atDot)
				<-release
			}
			return nil
		})
		ca := r.first(t, a)
		ctxB, cancelB := context.WithCancel(context.Background())
		defer cancelB()
		waiting := r.waitFor(t, ctxB, b)
		sent := make(chan error, 1)
		go func() { sent <- ca.Send(context.Background(), a) }()
		<-atDot // a's dot, and b's envelope behind it, reached the relay
		r.p.mu.Lock()
		queued := len(r.p.waiters)
		r.p.mu.Unlock()
		if queued != 0 {
			t.Fatalf("%d workers still queued: the waiter was not claimed", queued)
		}
		cancelB()
		if d := recv(t, waiting); !errors.Is(d.err, context.Canceled) {
			t.Errorf("DialFor after its context ended = %v, %v", d.c, d.err)
		}
		close(release)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		_ = ca.Close()
		if err := sendVia(context.Background(), r.p, c); err != nil {
			t.Fatal(err)
		}
		checkCaught(t, r.mc, []string{a.To, c.To})
		if n := r.mailsFor(b); n > 1 {
			t.Errorf("the relay read %d MAIL commands for the waiter, want at most 1 (written ahead)", n)
		}
		if n := r.proxy.conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
	t.Run("sends another message", func(t *testing.T) {
		r := newPipeRig(t)
		a, b, x := bodyMail("a@example.com"), bodyMail("b@example.com"), bodyMail("x@example.com")
		d := r.handedOver(t, a, b)
		if err := d.c.Send(context.Background(), x); err != nil {
			t.Errorf("Send of another message = %v, want it sent on a new connection", err)
		}
		_ = d.c.Close()
		checkCaught(t, r.mc, []string{a.To, x.To})
	})
}

// TestPipelinedSendKeepsItsDeadline: the waiter's send, continuing a
// transaction written ahead, is cut off at its own context's end.
func TestPipelinedSendKeepsItsDeadline(t *testing.T) {
	r := newPipeRig(t)
	a, b := bodyMail("a@example.com"), bodyMail("b@example.com")
	release := make(chan struct{})
	defer close(release)
	r.setFault(func(stage mailcatcher.Stage, arg string) error {
		if stage == mailcatcher.StageData && arg == b.To {
			<-release
		}
		return nil
	})
	d := r.handedOver(t, a, b)
	defer d.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.c.Send(ctx, b)
	if !errors.Is(err, delivery.ErrOutcomeUnknown) {
		t.Errorf("Send = %v, want an unknown outcome (cut off after the dot)", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Send took %v after its context ended", took)
	}
	if got := r.mailsFor(b); got != 1 {
		t.Errorf("the relay read %d MAIL commands for the waiter, want 1 (written ahead)", got)
	}
}
