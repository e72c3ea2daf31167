// Package rawmail is the benchmark's baseline: go-mail writing messages
// straight to the relay over a fixed number of connections kept open for
// the whole run, with no queue, no records and no retries. Each message is
// built with go-mail, as a program using go-mail directly would.
package rawmail

import (
	"bytes"
	"context"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wneessen/go-mail"
)

// Message is one message's rendered content.
type Message struct {
	To, Subject, Text, HTML string
	MessageID               string
	ListUnsubscribeURL      string
}

// Config configures a run.
type Config struct {
	// Addr is the relay's host:port (no TLS).
	Addr  string
	Conns int
	From  *netmail.Address
	// MessageIDDomain is the right-hand side of the Message-ID.
	MessageIDDomain string
	// Count is how many messages to send; Render makes message i.
	Count  int
	Render func(i int) Message
}

// Send delivers cfg.Count messages over cfg.Conns connections and returns
// when every one was sent (or the first error).
func Send(ctx context.Context, cfg Config) error {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("rawmail: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("rawmail: port: %w", err)
	}
	var next atomic.Int64
	errs := make(chan error, cfg.Conns)
	var wg sync.WaitGroup
	for range cfg.Conns {
		wg.Go(func() {
			if err := sendLoop(ctx, cfg, host, port, &next); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func sendLoop(ctx context.Context, cfg Config, host string, port int, next *atomic.Int64) error {
	client, err := mail.NewClient(host,
		mail.WithPort(port), mail.WithTLSPolicy(mail.NoTLS), mail.WithTimeout(30*time.Second),
		mail.WithoutNoop(), mail.WithoutRset())
	if err != nil {
		return fmt.Errorf("rawmail: %w", err)
	}
	session, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("rawmail: dial: %w", err)
	}
	defer func() { _ = client.CloseWithSMTPClient(session) }()
	for {
		i := int(next.Add(1) - 1)
		if i >= cfg.Count {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, err := build(cfg, cfg.Render(i))
		if err != nil {
			return fmt.Errorf("rawmail: build message %d: %w", i, err)
		}
		if err := client.SendWithSMTPClient(session, msg); err != nil {
			return fmt.Errorf("rawmail: send message %d: %w", i, err)
		}
	}
}

// build makes the message the way the sender's go-mail path does: text
// part first then HTML, RFC 8058 one-click unsubscribe, bulk precedence.
func build(cfg Config, m Message) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(cfg.From)
	if err := msg.To(m.To); err != nil {
		return nil, err
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.MessageID + "@" + cfg.MessageIDDomain)
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	if err := msg.SetListUnsubscribeOneClick(m.ListUnsubscribeURL); err != nil {
		return nil, err
	}
	msg.SetBulk()
	return msg, nil
}

// Size is the size on the wire of message m as go-mail writes it.
func Size(cfg Config, m Message) (int, error) {
	msg, err := build(cfg, m)
	if err != nil {
		return 0, err
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		return 0, err
	}
	return b.Len(), nil
}
