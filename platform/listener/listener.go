// Package listener opens the TCP listeners a service serves on, or adopts
// listeners its caller bound already (tests and the all-in-one binary bind
// every port before any service starts, so the services can find each
// other).
package listener

import (
	"fmt"
	"net"
)

// Open returns given when it is set, else a new TCP listener on addr.
func Open(given net.Listener, addr string) (net.Listener, error) {
	if given != nil {
		return given, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// Close closes every listener that is not nil. A service defers it for the
// listeners it owns, so none outlives it whichever way it returns; closing a
// listener its server already closed is harmless.
func Close(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			_ = l.Close()
		}
	}
}
