package smtpmail

import "github.com/paperroute/paperroute/services/sender/internal/delivery"

// Relay implements delivery.Relayed: the relay's address (Config.Addr),
// the name its pacing and limits go by.
func (c *conn) Relay() string { return c.mailer.cfg.Addr }

// Relay implements delivery.Relayed for a pooled connection.
func (l *lease) Relay() string {
	if r, ok := l.pc.c.(delivery.Relayed); ok {
		return r.Relay()
	}
	return ""
}
