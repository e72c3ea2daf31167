// Package smtpmail delivers delivery.Mail over SMTP with
// github.com/wneessen/go-mail: it builds the message (headers, text part
// first then HTML, RFC 8058 one-click unsubscribe, bulk precedence), keeps
// one SMTP session per connection, and classifies failures into delivered,
// permanently rejected and temporary.
package smtpmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// TLSMode is how the connection to the relay is secured.
type TLSMode string

// The TLS modes.
const (
	// TLSOpportunistic uses STARTTLS when the relay offers it.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSMandatory requires STARTTLS; a relay without it is an error.
	TLSMandatory TLSMode = "mandatory"
	// TLSNone never uses TLS.
	TLSNone TLSMode = "none"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit TLSMode = "implicit"
)

// ParseTLSMode checks a configured mode.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case TLSOpportunistic, TLSMandatory, TLSNone, TLSImplicit:
		return m, nil
	}
	return "", fmt.Errorf("smtpmail: unknown TLS mode %q (want opportunistic, mandatory, none or implicit)", s)
}

// quitTimeout bounds the polite QUIT when a connection is closed.
const quitTimeout = 2 * time.Second

// Config configures a Mailer.
type Config struct {
	// Addr is the relay's host:port.
	Addr string
	// Username and Password enable SMTP AUTH when Username is set. The
	// mechanism is discovered from the relay; PLAIN and LOGIN are only used
	// over TLS, so a password never crosses the network in clear text.
	Username string
	Password string
	// TLS is the TLS mode.
	TLS TLSMode
	// TLSConfig, if set, replaces the default TLS settings (server name
	// from Addr, TLS 1.2 or later).
	TLSConfig *tls.Config
	// Timeout bounds a dial, and each message's whole SMTP transaction.
	Timeout time.Duration
	// From is the From header and envelope sender.
	From *netmail.Address
	// MessageIDDomain is the right-hand side of Message-ID headers.
	MessageIDDomain string
	// ListID, when set, is the List-Id header of bulk mail (RFC 2919);
	// the caller has checked it is one safe header line.
	ListID string
	// VERP makes the envelope sender <local>+<message id>@<domain> of From
	// (variable envelope return path), so a bounce names its message.
	VERP bool
	// DKIM, when set, signs every message.
	DKIM *DKIM
}

// envelopeFrom is the MAIL FROM address for a message.
func (m *Mailer) envelopeFrom(id string) string {
	addr := m.cfg.From.Address
	at := strings.LastIndexByte(addr, '@')
	if !m.cfg.VERP || at < 0 {
		return addr
	}
	return addr[:at] + "+" + id + addr[at:]
}

// Mailer opens connections to the relay. It implements delivery.Mailer.
type Mailer struct {
	cfg  Config
	host string
	port int
	// encoded keeps the contents encoded once for splicing (see splice.go).
	encoded encodedCache
}

var _ delivery.Mailer = (*Mailer)(nil)

// New checks cfg and returns a Mailer.
func New(cfg Config) (*Mailer, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: relay address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return nil, fmt.Errorf("smtpmail: relay address %q: want host:port", cfg.Addr)
	}
	if _, err := ParseTLSMode(string(cfg.TLS)); err != nil {
		return nil, err
	}
	switch {
	case cfg.From == nil:
		return nil, errors.New("smtpmail: From is required")
	case cfg.MessageIDDomain == "":
		return nil, errors.New("smtpmail: MessageIDDomain is required")
	case cfg.Timeout <= 0:
		return nil, errors.New("smtpmail: Timeout must be positive")
	}
	return &Mailer{cfg: cfg, host: host, port: port}, nil
}

// Dial implements delivery.Mailer: it connects, says EHLO, does STARTTLS and
// AUTH as configured, and returns the session.
func (m *Mailer) Dial(ctx context.Context) (delivery.Conn, error) {
	c := &conn{}
	tlsCfg := m.cfg.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	}
	policy := mail.TLSOpportunistic
	switch m.cfg.TLS {
	case TLSMandatory:
		policy = mail.TLSMandatory
	case TLSNone:
		policy = mail.NoTLS
	}
	opts := []mail.Option{
		mail.WithPort(m.port),
		mail.WithTimeout(m.cfg.Timeout),
		mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(tlsCfg),
		// The worker redials a connection that sat idle or failed, so a
		// NOOP before every message would only cost a round trip.
		mail.WithoutNoop(),
		// RSET after a completed transaction is redundant (the next MAIL
		// starts a new one); go-mail still sends RSET after a refused
		// MAIL or RCPT.
		mail.WithoutRset(),
		mail.WithDialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.dial(ctx, network, addr, m.cfg.TLS == TLSImplicit, tlsCfg)
		}),
	}
	if m.cfg.Username != "" {
		opts = append(opts,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(m.cfg.Username),
			mail.WithPassword(m.cfg.Password))
	}
	client, err := mail.NewClient(m.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: configure client: %w", err)
	}
	session, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: connect to %s: %w", m.cfg.Addr, err)
	}
	c.mailer, c.client, c.session = m, client, session
	c.pipelining, _ = session.Extension("PIPELINING")
	return c, nil
}

// conn is one SMTP session. It implements delivery.Conn.
type conn struct {
	mailer  *Mailer
	client  *mail.Client
	session *smtp.Client

	// pipelining is whether the relay announced PIPELINING (RFC 2920).
	pipelining bool
	// ahead is the next message's envelope, written behind the last
	// message; its replies are still to be read (see transact). Only the
	// holder of the connection touches it.
	ahead *envelope

	mu     sync.Mutex
	raw    net.Conn    // the TCP connection, closed to cut off a send
	fence  *fencedConn // the same, bounding every read and write by the lease
	broken bool
	// lastReply is the reply to the last final dot (direct path).
	lastReply string
}

func (c *conn) dial(ctx context.Context, network, addr string, implicitTLS bool, tlsCfg *tls.Config) (net.Conn, error) {
	var d net.Dialer
	tcp, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	raw := &fencedConn{Conn: tcp}
	c.mu.Lock()
	c.raw, c.fence = raw, raw
	c.mu.Unlock()
	if !implicitTLS {
		return raw, nil
	}
	tc := tls.Client(raw, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// Send implements delivery.Conn. Mail with ASCII addresses (almost all) is
// written by writeMessage and sent in one write (see transact); anything
// else is built and sent by go-mail.
func (c *conn) Send(ctx context.Context, m *delivery.Mail) error {
	return c.sendNext(ctx, m, nil)
}

// sendNext is Send, with next to pipeline the next message's envelope
// behind m (direct path only; see transact).
func (c *conn) sendNext(ctx context.Context, m *delivery.Mail, next nextEnvelope) error {
	if !c.expects(m) {
		c.dropAhead()
		return errors.New("smtpmail: the connection was prepared for another message")
	}
	if canWrite(c.mailer.cfg.From, m) {
		return c.sendDirect(ctx, m, next)
	}
	if c.mailer.cfg.DKIM != nil {
		// Validated addresses and URLs are ASCII, so this does not happen;
		// never send unsigned when signing is configured.
		return fmt.Errorf("smtpmail: %w: DKIM signing needs ASCII addresses", delivery.ErrRejected)
	}
	return c.sendGoMail(ctx, m)
}

// sendGoMail builds the message with go-mail and sends it with go-mail.
func (c *conn) sendGoMail(ctx context.Context, m *delivery.Mail) error {
	c.mu.Lock()
	c.lastReply = "" // go-mail does not tell it
	c.mu.Unlock()
	msg, err := c.mailer.build(m)
	if err != nil {
		// The message can never be built: retrying cannot help.
		return fmt.Errorf("smtpmail: build message: %w: %w", delivery.ErrRejected, err)
	}
	c.setFence(ctx)
	stop := context.AfterFunc(ctx, c.cut)
	err = c.client.SendWithSMTPClient(c.session, msg)
	if !stop() {
		c.setBroken()
		if !msg.IsDelivered() {
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("smtpmail: send cut off (%w): %w", ctx.Err(), classify(err, c.setBroken))
		}
	}
	if msg.IsDelivered() {
		// The relay answered 250 after DATA: delivered, even if something
		// after it failed (that only spoils the connection).
		if err != nil {
			c.setBroken()
		}
		return nil
	}
	if err == nil {
		c.setBroken()
		return errors.New("smtpmail: send reported neither delivery nor an error")
	}
	return classify(err, c.setBroken)
}

// cut closes the TCP connection under a running send.
func (c *conn) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = true
	if c.raw != nil {
		_ = c.raw.Close()
	}
}

func (c *conn) setBroken() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = true
}

// Reusable implements delivery.Conn.
func (c *conn) Reusable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.broken
}

// Close implements delivery.Conn: QUIT on a healthy session (bounded by
// quitTimeout), otherwise just close the socket.
func (c *conn) Close() error {
	c.mu.Lock()
	raw, broken := c.raw, c.broken
	c.broken = true
	c.mu.Unlock()
	if raw == nil {
		return nil
	}
	if broken {
		_ = raw.Close()
		return nil
	}
	_ = raw.SetDeadline(time.Now().Add(quitTimeout))
	err := c.client.CloseWithSMTPClient(c.session)
	_ = raw.Close()
	if err != nil {
		return fmt.Errorf("smtpmail: close: %w", err)
	}
	return nil
}

// build makes the go-mail message. Caller input goes only into values that
// go-mail encodes (address, subject, bodies) or validates (the unsubscribe
// URL); never into header names or preformatted headers.
func (m *Mailer) build(q *delivery.Mail) (*mail.Msg, error) {
	r := q.Render()
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.cfg.From)
	if m.cfg.VERP {
		if err := msg.EnvelopeFrom(m.envelopeFrom(q.MessageID)); err != nil {
			return nil, fmt.Errorf("envelope sender: %w", err)
		}
	}
	if err := msg.To(q.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(r.Subject)
	msg.SetMessageIDWithValue(q.MessageID + "@" + m.cfg.MessageIDDomain)
	msg.SetDate()
	switch {
	case r.Text != "" && r.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, r.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, r.HTML)
	case r.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, r.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, r.HTML)
	}
	switch {
	case q.ListUnsubscribeURL == "":
	case queue.IsOneClickURL(q.ListUnsubscribeURL):
		if err := msg.SetListUnsubscribeOneClick(q.ListUnsubscribeURL); err != nil {
			return nil, fmt.Errorf("list-unsubscribe: %w", err)
		}
	default:
		// http to a loopback host (local development): go-mail's one-click
		// helper insists on https, so set both headers explicitly.
		msg.SetListUnsubscribe(q.ListUnsubscribeURL)
		msg.SetListUnsubscribePost()
	}
	if q.Lane == queue.LaneBulk {
		msg.SetBulk()
		if m.cfg.ListID != "" {
			msg.SetGenHeader(mail.Header("List-Id"), m.cfg.ListID)
		}
	}
	return msg, nil
}
