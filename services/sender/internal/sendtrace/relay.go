package sendtrace

import "github.com/paperroute/paperroute/services/sender/internal/delivery"

// Relay implements delivery.Relayed when the wrapped connection does.
func (c *conn) Relay() string {
	if r, ok := c.Conn.(delivery.Relayed); ok {
		return r.Relay()
	}
	return ""
}
