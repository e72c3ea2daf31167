package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// Relay counts what the relay answers to each message and how often the
// shared rate limits make a send wait:
//
//	sender_smtp_replies_total{class}     2xx, 4xx, 5xx, none (no reply)
//	sender_rate_limited_total{limit}     global, relay
type Relay struct {
	replies *prometheus.CounterVec
	limited *prometheus.CounterVec
}

// Reply classes and limit names: the label values, pre-initialised at zero
// so rates work from the start.
var (
	replyClasses = []string{"2xx", "4xx", "5xx", "none"}
	rateLimits   = []string{"global", "relay"}
)

// NewRelay registers the relay counters on reg.
func NewRelay(reg prometheus.Registerer) (*Relay, error) {
	r := &Relay{
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_smtp_replies_total",
			Help: "SMTP replies to message data by class (2xx, 4xx, 5xx); none = no reply (broken connection, timeout).",
		}, []string{"class"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_rate_limited_total",
			Help: "Times a shared rate limit (global, relay) made a send wait.",
		}, []string{"limit"}),
	}
	for _, c := range []prometheus.Collector{r.replies, r.limited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, c := range replyClasses {
		r.replies.WithLabelValues(c)
	}
	for _, l := range rateLimits {
		r.limited.WithLabelValues(l)
	}
	return r, nil
}

// RateLimited counts a refusal by the named shared limit ("global" or
// "relay"); it is redisstore.RateLimiter's OnLimited hook.
func (r *Relay) RateLimited(limit string) { r.limited.WithLabelValues(limit).Inc() }

// Mailer returns next with the reply to every send counted. replyCode
// tells the SMTP reply code a failed send carries (0: no reply), e.g.
// smtpmail.ReplyCode.
func (r *Relay) Mailer(next delivery.Mailer, replyCode func(error) int) delivery.Mailer {
	return &replyMailer{next: next, relay: r, code: replyCode}
}

type replyMailer struct {
	next  delivery.Mailer
	relay *Relay
	code  func(error) int
}

// Dial implements delivery.Mailer.
func (m *replyMailer) Dial(ctx context.Context) (delivery.Conn, error) {
	c, err := m.next.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return &replyConn{Conn: c, m: m}, nil
}

// DialFor implements delivery.EnvelopeDialer, so that counting replies
// does not hide the wrapped Mailer's.
func (m *replyMailer) DialFor(ctx context.Context, env delivery.Envelope) (delivery.Conn, error) {
	c, err := delivery.DialFor(ctx, m.next, env)
	if err != nil {
		return nil, err
	}
	return &replyConn{Conn: c, m: m}, nil
}

// replyConn counts Send's reply; Reusable and Close are the wrapped
// connection's.
type replyConn struct {
	delivery.Conn
	m *replyMailer
}

// Send implements delivery.Conn.
func (c *replyConn) Send(ctx context.Context, msg *delivery.Mail) error {
	err := c.Conn.Send(ctx, msg)
	c.m.relay.replies.WithLabelValues(replyClass(err, c.m.code)).Inc()
	return err
}

// LastReply implements delivery.Replier when the wrapped connection does.
func (c *replyConn) LastReply() string {
	if r, ok := c.Conn.(delivery.Replier); ok {
		return r.LastReply()
	}
	return ""
}

// Relay implements delivery.Relayed when the wrapped connection does, so
// counting replies does not hide which relay a send is paced by.
func (c *replyConn) Relay() string {
	if r, ok := c.Conn.(delivery.Relayed); ok {
		return r.Relay()
	}
	return ""
}

// replyClass is the reply class of a send's result.
func replyClass(err error, code func(error) int) string {
	if err == nil {
		return "2xx"
	}
	switch n := code(err); {
	case n >= 500 && n <= 599:
		return "5xx"
	case n >= 400 && n <= 499:
		return "4xx"
	case n >= 200 && n <= 299:
		return "2xx"
	}
	return "none"
}
